"""KV compaction: the committed nodes' K/V end up at consecutive positions after the context."""

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import DenseCache, PagedCache
from apar_jax.speculative.compaction import compact_dense, compact_paged, gather_nodes


def test_gather_nodes():
  values = jnp.arange(2 * 5 * 3).reshape(2, 5, 3)
  nodes = jnp.asarray([[0, 2, 4], [0, 1, -1]])
  got = np.asarray(gather_nodes(values, nodes))
  np.testing.assert_array_equal(got[0], np.asarray(values)[0, [0, 2, 4]])
  np.testing.assert_array_equal(got[1, :2], np.asarray(values)[1, [0, 1]])


def test_compact_paged_matches_numpy():
  rng = np.random.default_rng(0)
  s, pages_per_slot, page_size, hkv, d = 3, 4, 4, 2, 3
  num_pages = s * pages_per_slot + 1
  # Shuffled page tables: a slot's pages are not contiguous in the pool.
  perm = rng.permutation(s * pages_per_slot)
  tables = perm.reshape(s, pages_per_slot).astype(np.int32)
  k = rng.normal(size=(num_pages, page_size, hkv, d)).astype(np.float32)
  v = rng.normal(size=(num_pages, page_size, hkv, d)).astype(np.float32)
  lengths = np.asarray([2, 5, 7], np.int32)
  nodes = np.asarray([[0, 2, 5, -1], [0, 1, 2, 3], [0, 3, -1, -1]], np.int32)
  num = np.asarray([3, 4, 2], np.int32)
  active = np.asarray([True, True, True])
  out = compact_paged(PagedCache(jnp.asarray(k), jnp.asarray(v)), jnp.asarray(tables),
                      jnp.asarray(lengths), jnp.asarray(nodes), jnp.asarray(num),
                      jnp.asarray(active))

  def view(pool, slot):  # the slot's logical positions
    return pool[tables[slot]].reshape(-1, hkv, d)

  for pool, new in ((k, np.asarray(out.k_pages)), (v, np.asarray(out.v_pages))):
    for slot in range(s):
      before, after = view(pool, slot), view(new, slot)
      expect = before.copy()
      for j in range(num[slot]):
        expect[lengths[slot] + j] = before[lengths[slot] + nodes[slot, j]]
      np.testing.assert_array_equal(after, expect)
    np.testing.assert_array_equal(new[-1], pool[-1])  # the page nobody owns is untouched

  # Inactive slots move nothing.
  still = compact_paged(PagedCache(jnp.asarray(k), jnp.asarray(v)), jnp.asarray(tables),
                        jnp.asarray(lengths), jnp.asarray(nodes), jnp.asarray(num),
                        jnp.zeros((s,), bool))
  np.testing.assert_array_equal(np.asarray(still.k_pages), k)


def test_compact_dense_matches_numpy():
  rng = np.random.default_rng(1)
  k = rng.normal(size=(2, 12, 1, 2)).astype(np.float32)
  lengths = np.asarray([3, 1], np.int32)
  nodes = np.asarray([[0, 1, 4], [0, 2, -1]], np.int32)
  num = np.asarray([3, 2], np.int32)
  out = compact_dense(DenseCache(jnp.asarray(k), jnp.asarray(k)), jnp.asarray(lengths),
                      jnp.asarray(nodes), jnp.asarray(num))
  expect = k.copy()
  for b in range(2):
    for j in range(num[b]):
      expect[b, lengths[b] + j] = k[b, lengths[b] + nodes[b, j]]
  np.testing.assert_array_equal(np.asarray(out.k), expect)
