"""The dense-cache spec gives the same logits as causal attention without a cache."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import CausalSpec, DenseCache, DenseCacheSpec, build_model
from apar_jax.testing.accumulation_depth import forward_terms
from apar_jax.testing.rounding import assert_close_across_orders


def _tiny(tiny_config, vocab=97):
  tiny_config.model.vocab_size = vocab
  model = build_model(tiny_config.model)
  tokens = jnp.zeros((1, 4), jnp.int32)
  params = nn.unbox(model.init(jax.random.key(1), tokens, tokens, CausalSpec())['params'])
  return model, params


def test_prefill_then_one_token_steps_match_full_recompute(tiny_config):
  model, params = _tiny(tiny_config)
  cfg = tiny_config.model
  rng = np.random.default_rng(0)
  seq = jnp.asarray(rng.integers(0, 97, (2, 12)), jnp.int32)
  pos = jnp.broadcast_to(jnp.arange(12), (2, 12))
  full = model.apply({'params': params}, seq, pos, CausalSpec()).logits  # [2, 12, V]

  caches = tuple(DenseCache.zeros(2, 32, cfg.n_kv_heads, cfg.head_dim, jnp.float32)
                 for _ in range(cfg.n_layers))
  out = model.apply({'params': params}, seq[:, :7], pos[:, :7],
                    DenseCacheSpec(jnp.zeros((2,), jnp.int32)), caches)
  terms = forward_terms(cfg, keys=32)  # the cache's length bounds every softmax
  assert_close_across_orders(out.logits, full[:, :7], terms=terms, err_msg='prefill')
  caches = out.caches
  for t in range(7, 12):
    lengths = jnp.full((2,), t, jnp.int32)
    out = model.apply({'params': params}, seq[:, t:t + 1], pos[:, t:t + 1],
                      DenseCacheSpec(lengths), caches)
    caches = out.caches
    assert_close_across_orders(out.logits[:, 0], full[:, t], terms=terms, err_msg=f'step {t}')


def test_rows_with_different_lengths_do_not_see_padding(tiny_config):
  model, params = _tiny(tiny_config)
  cfg = tiny_config.model
  short = jnp.asarray([[3, 4, 5]], jnp.int32)
  ref = model.apply({'params': params}, short, jnp.arange(3)[None], CausalSpec()).logits[0, -1]
  padded = jnp.asarray([[3, 4, 5, 0, 0, 0], [1, 2, 3, 4, 5, 6]], jnp.int32)
  caches = tuple(DenseCache.zeros(2, 16, cfg.n_kv_heads, cfg.head_dim, jnp.float32)
                 for _ in range(cfg.n_layers))
  out = model.apply({'params': params}, padded, jnp.broadcast_to(jnp.arange(6), (2, 6)),
                    DenseCacheSpec(jnp.zeros((2,), jnp.int32)), caches)
  terms = forward_terms(cfg, keys=16)
  assert_close_across_orders(out.logits[0, 2], ref, terms=terms, err_msg='padded row')
  # Next token of the short row is written at position 3, over the padding.
  nxt = jnp.asarray([[7], [7]], jnp.int32)
  lengths = jnp.asarray([3, 6], jnp.int32)
  step = model.apply({'params': params}, nxt, lengths[:, None], DenseCacheSpec(lengths), out.caches)
  ref2 = model.apply({'params': params}, jnp.asarray([[3, 4, 5, 7]]), jnp.arange(4)[None],
                     CausalSpec()).logits[0, -1]
  assert_close_across_orders(step.logits[0, 0], ref2, terms=terms, err_msg='after the padding')
