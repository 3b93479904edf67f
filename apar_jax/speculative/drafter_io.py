"""Drafter checkpoints: orbax directories holding the head params, the drafter's description and the
fingerprint of the base model it was trained for (checked on load, before anything compiles).

Metadata (orbax custom metadata, key 'apar_jax_drafter'):
  {'kind': 'medusa' | 'hidden_transfer', 'num_heads': K (future tokens drafted),
   'transfer_layer': l (hidden_transfer only), 'base': fingerprint, 'train': {...} (free-form)}
"""

import os
import shutil
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp

from apar_jax.speculative.fingerprint import DrafterMismatchError, base_fingerprint, check_fingerprint

METADATA_KEY = 'apar_jax_drafter'
KINDS = ('medusa', 'hidden_transfer')


def save_drafter(path: str, params: Any, *, kind: str, num_heads: int, base_params: Any,
                 model_cfg: Any, transfer_layer: Optional[int] = None,
                 train_info: Optional[dict[str, Any]] = None, overwrite: bool = False) -> str:
  """Writes a drafter checkpoint directory; returns its absolute path."""
  if kind not in KINDS:
    raise ValueError(f'unknown drafter kind {kind!r}; choose one of {KINDS}')
  path = os.path.abspath(path)
  if os.path.exists(path):
    if not overwrite:
      raise FileExistsError(f'{path} already exists: choose a new directory or pass overwrite=True')
    shutil.rmtree(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  meta = {'kind': kind, 'num_heads': int(num_heads), 'base': base_fingerprint(base_params, model_cfg),
          'train': dict(train_info or {})}
  if transfer_layer is not None:
    meta['transfer_layer'] = int(transfer_layer)
  host = jax.tree.map(np.asarray, params)
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(path, host, custom_metadata={METADATA_KEY: meta})
    ckpt.wait_until_finished()
  return path


def drafter_metadata(path: str) -> dict[str, Any]:
  """The description stored with a drafter checkpoint (no arrays are read)."""
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f'drafter checkpoint {path} does not exist (train one with the '
                            'train_drafter command)')
  with ocp.StandardCheckpointer() as ckpt:
    try:
      custom = ckpt.metadata(path).custom_metadata or {}
    except Exception as e:  # noqa: BLE001 - orbax raises many kinds for a damaged directory
      raise ValueError(f'{path} is not a readable orbax checkpoint ({e!r})') from e
  if METADATA_KEY not in custom:
    raise ValueError(f'{path} is an orbax checkpoint but not a drafter (no {METADATA_KEY!r} '
                     'metadata): pass a directory written by the train_drafter command')
  return custom[METADATA_KEY]


def load_drafter(path: str, base_params: Any, model_cfg: Any,
                 kind: Optional[str] = None) -> tuple[Any, dict[str, Any]]:
  """(params, metadata) of a drafter checkpoint, after checking it fits this base model.

  Raises DrafterMismatchError for a drafter of another kind or trained for another base model.
  """
  path = os.path.abspath(path)
  meta = drafter_metadata(path)
  if kind is not None and meta['kind'] != kind:
    raise DrafterMismatchError(f'{path} holds a {meta["kind"]} drafter, not {kind}')
  check_fingerprint(meta['base'], base_params, model_cfg, f'drafter checkpoint {path}')
  with ocp.StandardCheckpointer() as ckpt:
    params = ckpt.restore(path)
  d = int(model_cfg.d_model)
  widths = {leaf.shape[-1] for leaf in jax.tree.leaves(params)}
  if widths != {d}:
    raise DrafterMismatchError(f'{path}: drafter arrays have width {sorted(widths)}, the model has '
                               f'd_model {d}')
  return jax.tree.map(jax.numpy.asarray, params), meta
