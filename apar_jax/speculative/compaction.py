"""Keeping only the accepted nodes' K/V: gather them into consecutive positions after the context.

A verification step writes the T tree nodes of slot s at positions `lengths[s] + node`. After
acceptance the committed nodes (root first, `Acceptance.nodes`) must sit at `lengths[s] + j`,
j = 0 .. num_nodes - 1. Node ids grow along a root path (parents come first), so `node_j >= j`: every
source is at or after its destination, and reading all sources before writing is safe. Positions past
the new length keep stale values, which the next step overwrites (shapes never change).
"""

import jax
import jax.numpy as jnp

from apar_jax.model import DenseCache, PagedCache


def gather_nodes(values: jax.Array, nodes: jax.Array) -> jax.Array:
  """values [S, T, ...], nodes [S, D + 1] (-1 padded) -> [S, D + 1, ...]; padding reads node 0."""
  idx = jnp.maximum(nodes, 0).reshape(nodes.shape + (1,) * (values.ndim - 2))
  return jnp.take_along_axis(values, idx, axis=1)


def compaction_positions(lengths: jax.Array, nodes: jax.Array,
                         num_nodes: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """(src [S, D + 1], dst [S, D + 1], valid [S, D + 1]): move position src to dst where valid."""
  j = jnp.arange(nodes.shape[1], dtype=jnp.int32)[None]
  valid = j < num_nodes[:, None]
  src = lengths[:, None] + jnp.maximum(nodes, 0)
  dst = lengths[:, None] + j
  return src.astype(jnp.int32), dst.astype(jnp.int32), valid


def compact_paged(cache: PagedCache, page_tables: jax.Array, lengths: jax.Array, nodes: jax.Array,
                  num_nodes: jax.Array, active: jax.Array | None = None) -> PagedCache:
  """One layer's pool with each active slot's committed nodes moved to consecutive positions.

  page_tables [S, pages_per_slot], lengths [S] (committed before the step), nodes [S, D + 1],
  num_nodes [S], active [S] bool (None = all). Moves that do not change anything (src == dst) are
  skipped, so a slot that kept a straight prefix of its block writes nothing.
  """
  src, dst, valid = compaction_positions(lengths, nodes, num_nodes)
  num_pages, page_size = cache.k_pages.shape[:2]
  move = valid & (src != dst)
  if active is not None:
    move = move & active[:, None]

  def locate(pos):
    page = jnp.take_along_axis(page_tables, pos // page_size, axis=1)
    return page, pos % page_size

  src_page, src_off = locate(src)
  dst_page, dst_off = locate(dst)
  dst_page = jnp.where(move, dst_page, num_pages)  # out of bounds: dropped

  def moved(pages):
    vals = pages[src_page, src_off]  # [S, D + 1, Hkv, Dh], all read before any write
    return pages.at[dst_page, dst_off].set(vals, mode='drop')

  return PagedCache(moved(cache.k_pages), moved(cache.v_pages))


def compact_dense(cache: DenseCache, lengths: jax.Array, nodes: jax.Array,
                  num_nodes: jax.Array) -> DenseCache:
  """The same for one layer's dense cache [B, max_len, Hkv, D]."""
  src, dst, valid = compaction_positions(lengths, nodes, num_nodes)
  max_len = cache.k.shape[1]
  dst = jnp.where(valid & (src != dst), dst, max_len)
  rows = jnp.arange(src.shape[0])[:, None]

  def moved(x):
    vals = x[rows, src]
    return x.at[rows, dst].set(vals, mode='drop')

  return DenseCache(moved(cache.k), moved(cache.v))
