"""Which base model a drafter was trained for: shapes plus a probe of a few weights.

Drafter weights only make sense on top of the exact base they were trained with. The fingerprint
records the model shape and a few dozen weight values (embedding rows, the final norm, the first
layer's norm), compared with a relative tolerance so that the same model loaded in another dtype
(bf16 on TPU) still matches, while another model does not.
"""

from typing import Any

import numpy as np

SHAPE_KEYS = ('vocab_size', 'd_model', 'n_layers', 'n_heads', 'n_kv_heads', 'head_dim', 'ffn_dim',
              'tie_embeddings')
PROBE_TOLERANCE = 3e-2  # relative to the probe's scale; bf16 rounding is ~4e-3


class DrafterMismatchError(ValueError):
  """A drafter checkpoint trained for another base model (or another drafter shape)."""


def _probe(params: Any) -> list[float]:
  emb = np.asarray(params['embed']['embedding'], np.float32)
  rows = [emb[i, :8] for i in (0, 1, 2, emb.shape[0] // 3)]
  norm = np.asarray(params['final_norm']['scale'], np.float32)[:8]
  att = np.asarray(params['layers_0']['attention_norm']['scale'], np.float32)[:8]
  return [float(x) for x in np.concatenate(rows + [norm, att])]


def base_fingerprint(params: Any, model_cfg: Any) -> dict[str, Any]:
  """A JSON-able description of the base model (shape and weight probe)."""
  shape = {k: (bool(model_cfg[k]) if k == 'tie_embeddings' else int(model_cfg[k]))
           for k in SHAPE_KEYS}
  return {'shape': shape, 'probe': _probe(params)}


def check_fingerprint(stored: dict[str, Any], params: Any, model_cfg: Any, what: str) -> None:
  """Raises DrafterMismatchError if `stored` does not describe this base model."""
  here = base_fingerprint(params, model_cfg)
  diffs = [f'{k}: trained for {stored["shape"].get(k)!r}, this model has {v!r}'
           for k, v in here['shape'].items() if stored['shape'].get(k) != v]
  if diffs:
    raise DrafterMismatchError(f'{what} was trained for another base model ({"; ".join(diffs)}): '
                               'train a drafter for this model with the train_drafter command')
  a, b = np.asarray(stored['probe'], np.float32), np.asarray(here['probe'], np.float32)
  scale = max(float(np.max(np.abs(a))), 1e-6)
  err = float(np.max(np.abs(a - b))) / scale if a.shape == b.shape else float('inf')
  if err > PROBE_TOLERANCE:
    raise DrafterMismatchError(f'{what} was trained for another base model of the same shape (its '
                               f'weight probe differs by {err:.3g} relative): train a drafter for '
                               'this model with the train_drafter command')
