"""Paged branch-local attention over shared pages == a dense forward with an explicit mask (to fp32
rounding of the two orders).

A parent slot prefills a prefix ending in `[Fork]`; a child slot shares its full pages and gets a
copy of the partial one (what the engine's fork does). Then both decode multi-token blocks at
overlapping positions through `PagedSpec`. The dense side runs the same tokens packed in one row,
each token seeing exactly its branch's view (prefix, then its own tokens), with positions along its
branch.
"""

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import PagedCache, PagedSpec, build_model, dense_attention
from apar_jax.testing.accumulation_depth import forward_terms
from apar_jax.testing.rounding import assert_close_across_orders

PAGE = 4
PREFIX = [5, 9, 13, 17, 21, 25, 60]  # 7 tokens, the last one a [Fork]: page 1 is partial
PARENT = [[30, 31, 32], [33]]  # two blocks: Q=3 then Q=1 (crosses into page 2)
CHILD = [[61, 40, 41], [42]]


@flax.struct.dataclass
class ExplicitMaskSpec:
  """Dense attention over the block itself with a given mask [1, T, T] (no cache)."""
  mask: jax.Array

  def attend(self, q, k, v, cache, scale):
    return dense_attention(q, k, v, self.mask, scale), cache


def _dense_logits(model, params):
  rows = PREFIX + sum(PARENT, []) + sum(CHILD, [])
  n0, n1 = len(PREFIX), len(sum(PARENT, []))
  t = len(rows)
  branch = np.array([0] * n0 + [1] * n1 + [2] * (t - n0 - n1))
  pos = np.array(list(range(n0)) + list(range(n0, n0 + n1)) + list(range(n0, t - n1)))
  idx = np.arange(t)
  same_or_prefix = (branch[None, :] == 0) | (branch[None, :] == branch[:, None])
  mask = (idx[None, :] <= idx[:, None]) & same_or_prefix
  out = jax.jit(model.apply)({'params': params}, jnp.asarray([rows]), jnp.asarray([pos]),
                             ExplicitMaskSpec(jnp.asarray(mask[None])))
  logits = np.asarray(out.logits[0])
  return logits[n0:n0 + n1], logits[n0 + n1:]


def _paged_logits(model, cfg, params, block_mask_given: bool):
  num_pages = 8
  caches = tuple(PagedCache.zeros(num_pages, PAGE, cfg.n_kv_heads, cfg.head_dim, jnp.float32)
                 for _ in range(cfg.n_layers))
  # parent: pages 3, 6 (partial after the prefix), 1 later; child: shares 3, own copy 5, then 2.
  tables = jnp.asarray([[3, 6, 1, 7], [3, 5, 2, 7]], jnp.int32)
  n0 = len(PREFIX)
  spec = PagedSpec(tables[:1], jnp.zeros((1,), jnp.int32))
  apply = jax.jit(model.apply)
  out = apply({'params': params}, jnp.asarray([PREFIX]), jnp.arange(n0)[None], spec, caches)
  caches = tuple(PagedCache(c.k_pages.at[5].set(c.k_pages[6]), c.v_pages.at[5].set(c.v_pages[6]))
                 for c in out.caches)  # copy-on-write of the partial page
  lengths = jnp.asarray([n0, n0], jnp.int32)
  parent_logits, child_logits = [], []
  for p_block, c_block in zip(PARENT, CHILD):
    q = len(p_block)
    causal = jnp.broadcast_to(jnp.tril(jnp.ones((q, q), bool)), (2, q, q))
    mask = causal if block_mask_given else None
    spec = PagedSpec(tables, lengths, mask, write=jnp.ones((2,), bool))
    positions = lengths[:, None] + jnp.arange(q)[None]
    out = apply({'params': params}, jnp.asarray([p_block, c_block]), positions, spec, caches)
    caches = out.caches
    parent_logits.append(np.asarray(out.logits[0]))
    child_logits.append(np.asarray(out.logits[1]))
    lengths = lengths + q
  return np.concatenate(parent_logits), np.concatenate(child_logits)


def test_paged_shared_pages_match_dense_explicit_mask(tiny):
  config, params = tiny
  model = build_model(config.model)
  want_parent, want_child = _dense_logits(model, params)
  for given in (False, True):
    got_parent, got_child = _paged_logits(model, config.model, params, given)
    terms = forward_terms(config.model, keys=8 * PAGE)  # the pool's size bounds every softmax
    assert_close_across_orders(got_parent, want_parent, terms=terms, err_msg=f'parent ({given})')
    assert_close_across_orders(got_child, want_child, terms=terms, err_msg=f'child ({given})')
  assert np.abs(want_parent[0] - want_child[0]).max() > 1e-3  # the branches really differ


def test_idle_slot_writes_nothing(tiny):
  config, params = tiny
  cfg = config.model
  model = build_model(cfg)
  caches = tuple(PagedCache.zeros(4, PAGE, cfg.n_kv_heads, cfg.head_dim, jnp.float32)
                 for _ in range(cfg.n_layers))
  tables = jnp.asarray([[0, 1], [0, 2]], jnp.int32)  # slot 1 would overwrite page 0 if it wrote
  spec = PagedSpec(tables, jnp.zeros((2,), jnp.int32), write=jnp.asarray([True, False]))
  apply = jax.jit(model.apply)
  out = apply({'params': params}, jnp.asarray([[3, 4], [7, 8]]), jnp.asarray([[0, 1], [0, 1]]),
              spec, caches)
  alone = apply({'params': params}, jnp.asarray([[3, 4]]), jnp.asarray([[0, 1]]),
                      PagedSpec(tables[:1], jnp.zeros((1,), jnp.int32)), caches)
  for a, b in zip(out.caches, alone.caches):
    np.testing.assert_array_equal(np.asarray(a.k_pages), np.asarray(b.k_pages))
