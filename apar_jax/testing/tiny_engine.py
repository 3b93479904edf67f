"""A tiny random model for engine tests and the device check's smoke run: a 64-token vocabulary,
`[Fork]`/EOS provoked by head columns pointing along their trigger tokens' embeddings."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from apar_jax.defaults import base_config, engine_config, model_config
from apar_jax.engine import ControlIds
from apar_jax.model import CausalSpec, build_model


VOCAB = 64
FORK, CHILD, EOS = 60, 61, 62
IDS = ControlIds(FORK, CHILD, (EOS,))


def tiny_config(**engine_overrides) -> ml_collections.ConfigDict:
  """A 2-layer model with a 64-token vocabulary (ids 60/61/62 = [Fork]/[Child]/EOS)."""
  config = base_config()
  config.name = 'engine_tiny'
  config.model = model_config(
      vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=8, ffn_dim=64,
      rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=False, max_position=1024)
  # Row buckets off: one chunk compile per engine (the suite builds hundreds); the tests of the
  # buckets, and the identity tests that matter most, turn them on.
  defaults = dict(row_buckets=False, max_slots=8, num_pages=96, page_size=4, pages_per_slot=24,
                  max_requests=4, max_new_tokens=24, chunk_steps=8, prefill_chunk=8,
                  max_live_branches=32, max_depth=1, attention_impl='reference')
  defaults.update(engine_overrides)
  config.engine = engine_config(**defaults)
  return config


def tiny_params(config: ml_collections.ConfigDict, seed: int = 0,
                fork_after: tuple[int, ...] = (), eos_after: tuple[int, ...] = (),
                gain: float = 0.1):
  """Random params; `[Fork]` (EOS) tends to follow the tokens `fork_after` (`eos_after`).

  The head column of `[Fork]` points along the embeddings of its trigger tokens, which dominate the
  residual stream of this small random model; `[Child]` gets a large column so that the engine's
  ban (never sample `[Child]`) is exercised.
  """
  model = build_model(config.model)
  init = jax.jit(lambda key: model.init(key, jnp.zeros((1, 1), jnp.int32),
                                        jnp.zeros((1, 1), jnp.int32), CausalSpec())['params'])
  params = init(jax.random.key(seed))
  params = jax.tree.map(np.asarray, nn.unbox(params))
  emb = params['embed']['embedding']  # [V, d]
  head = params['lm_head']['kernel'].copy()  # [d, V]

  def direction(tokens):
    v = sum(emb[t] / np.linalg.norm(emb[t]) for t in tokens)
    return v / max(np.linalg.norm(v), 1e-6)

  if fork_after:
    head[:, FORK] = gain * direction(fork_after) * np.sqrt(len(fork_after))
  if eos_after:
    head[:, EOS] = gain * direction(eos_after) * np.sqrt(len(eos_after))
  head[:, CHILD] = 10 * gain * direction(range(VOCAB))
  params['lm_head']['kernel'] = head
  return jax.tree.map(jnp.asarray, params)


FORKY = dict(seed=1, fork_after=tuple(range(0, 60, 3)), eos_after=tuple(range(1, 60, 7)), gain=0.05)
"""Settings of `tiny_params` under which greedy APAR forks often (up to 17 forks at depth 2)."""


class FakeTokenizer:
  """Text = each id as `<id>`; control and stop tokens skipped (like `skip_special`)."""
  fork_id, child_id, stop_ids = FORK, CHILD, (EOS,)
  vocab_size = VOCAB

  def decode(self, ids, skip_special: bool = True) -> str:
    skip = {FORK, CHILD, EOS} if skip_special else set()
    return ''.join(f'<{i}>' for i in ids if i not in skip)
