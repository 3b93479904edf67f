"""Shared preparation of packed-tree kernel inputs: pad T to whole blocks, ancestry, block lists."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from pallas_kernels.packed_tree.block_sparsity import BlockLists, block_lists
from pallas_kernels.packed_tree.metadata import TreeMetadata, build_metadata


@dataclasses.dataclass(frozen=True)
class TreeInputs:
  q: jax.Array  # [B, Tp, Hq, D]
  k: jax.Array  # [B, Tp, Hkv, D]
  v: jax.Array  # [B, Tp, Hkv, D]
  meta: TreeMetadata  # over the padded rows
  lists: BlockLists
  padded_len: int
  num_q_blocks: int
  num_k_blocks: int
  max_depth: int


def prepare_tree_inputs(
    q: jax.Array, k: jax.Array, v: jax.Array,
    branch_ids: jax.Array, branch_parent: jax.Array, fork_index: jax.Array,
    *, max_depth: int | None, block_q: int, block_k: int,
) -> TreeInputs:
  """Pads the row to a multiple of both block sizes with padding tokens (branch -1)."""
  t = q.shape[1]
  multiple = max(block_q, block_k)
  if multiple % block_q or multiple % block_k:
    raise ValueError(f"block sizes must divide each other, got {block_q} and {block_k}")
  tp = -(-t // multiple) * multiple
  pad = tp - t
  rows = ((0, 0), (0, pad), (0, 0), (0, 0))
  ids = jnp.pad(branch_ids.astype(jnp.int32), ((0, 0), (0, pad)), constant_values=-1)
  depth = branch_parent.shape[1] if max_depth is None else max_depth
  meta = build_metadata(ids, branch_parent, fork_index, depth)
  return TreeInputs(
      q=jnp.pad(q, rows), k=jnp.pad(k, rows), v=jnp.pad(v, rows), meta=meta,
      lists=block_lists(meta, ids, block_q, block_k), padded_len=tp,
      num_q_blocks=tp // block_q, num_k_blocks=tp // block_k, max_depth=depth)
