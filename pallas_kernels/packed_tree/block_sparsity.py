"""Which key blocks each query block of a packed tree must visit: exact block-level visibility.

Token i sees j iff j <= bound_i(branch_j), with bound_i(a) = min(branch_bound[branch_i, a], i) (-1 when
a is not on i's path). A (query block, key block) pair holds a visible pair iff for some branch a,
  min{ j in key block : branch_j = a }  <=  max{ bound_i(a) : i in query block },
which costs O(T * NB) to tabulate and O(nq * nk * NB) to test, with no [T, T] mask anywhere.
Kernels visit the listed key blocks only; the list is padded by repeating its last entry, so a TPU
pipeline sees an unchanged block index and issues no copy for the padding steps.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from pallas_kernels.packed_tree.metadata import BIG, TreeMetadata


@dataclasses.dataclass(frozen=True)
class BlockLists:
  visible: jax.Array  # [B, nq, nk] bool: the pair holds at least one visible (query, key)
  kv_list: jax.Array  # [B, nq, nk] int32: visible key blocks first (ascending), then the last repeated
  kv_count: jax.Array  # [B, nq] int32: number of visible key blocks


def block_visibility(
    meta: TreeMetadata, branch_ids: jax.Array, block_q: int, block_k: int
) -> jax.Array:  # [B, nq, nk] bool
  bsz, t = branch_ids.shape
  nb = meta.branch_bound.shape[1]
  batch = jnp.arange(bsz)[:, None]
  ids = branch_ids.astype(jnp.int32)
  real = ids >= 0
  safe = jnp.clip(ids, 0, nb - 1)
  rows = jnp.arange(t, dtype=jnp.int32)
  # bound_i(a) for every token and branch: [B, T, NB].
  bound = jnp.minimum(meta.branch_bound[batch, safe], rows[None, :, None])
  bound = jnp.where(real[..., None], bound, -1)
  max_bound = jnp.max(bound.reshape(bsz, t // block_q, block_q, nb), axis=2)  # [B, nq, NB]
  # First row of each branch inside each key block: [B, nk, NB].
  onehot = (ids[..., None] == jnp.arange(nb)) & real[..., None]
  first = jnp.where(onehot, rows[None, :, None], BIG)
  min_pos = jnp.min(first.reshape(bsz, t // block_k, block_k, nb), axis=2)
  return jnp.any(min_pos[:, None, :, :] <= max_bound[:, :, None, :], axis=-1)


def compact_lists(visible: jax.Array) -> BlockLists:
  """Visible key blocks of each query block, ascending, padded by repeating the last one."""
  nk = visible.shape[-1]
  order = jnp.arange(nk, dtype=jnp.int32)
  keys = jnp.where(visible, order, nk + order)
  listed = jnp.argsort(keys, axis=-1).astype(jnp.int32)  # visible ones first, ascending
  count = jnp.sum(visible, axis=-1).astype(jnp.int32)  # [B, nq]
  last = jnp.take_along_axis(listed, jnp.maximum(count - 1, 0)[..., None], axis=-1)
  last = jnp.where(count[..., None] > 0, last, 0)
  kv_list = jnp.where(order < count[..., None], listed, last)
  return BlockLists(visible=visible, kv_list=kv_list, kv_count=count)


def block_lists(meta: TreeMetadata, branch_ids: jax.Array, block_q: int, block_k: int) -> BlockLists:
  return compact_lists(block_visibility(meta, branch_ids, block_q, block_k))
