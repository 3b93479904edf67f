"""Pure-jnp packed-tree attention: the test oracle and the CPU path (dense [T, T] visibility)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pallas_kernels.masked_attention import masked_attention
from pallas_kernels.packed_tree.metadata import build_metadata, tree_visible


def tree_mask(
    branch_ids: jax.Array,  # [B, T] int32
    branch_parent: jax.Array,  # [B, NB] int32
    fork_index: jax.Array,  # [B, NB] int32
    max_depth: int,
) -> jax.Array:  # [B, T, T] bool: [b, i, j] = token i sees token j
  meta = build_metadata(branch_ids, branch_parent, fork_index, max_depth)
  t = branch_ids.shape[1]
  pos = jnp.arange(t, dtype=jnp.int32)[None, :]

  def one(ancestor, bound, key_depth, key_branch):  # one batch row
    levels = range(max_depth)
    return tree_visible([ancestor[:, d:d + 1] for d in levels], [bound[:, d:d + 1] for d in levels],
                        key_depth[None, :], key_branch[None, :], pos)

  return jax.vmap(one)(meta.ancestor, meta.bound, meta.key_depth, meta.key_branch)


def packed_tree_attention_reference(
    q: jax.Array,  # [B, T, Hq, D]
    k: jax.Array,  # [B, T, Hkv, D]
    v: jax.Array,  # [B, T, Hkv, D]
    branch_ids: jax.Array,  # [B, T] int32
    branch_parent: jax.Array,  # [B, NB] int32
    fork_index: jax.Array,  # [B, NB] int32
    *,
    scale: float,
    soft_cap: float | None = None,
    max_depth: int | None = None,
) -> jax.Array:  # [B, T, Hq, D]
  """Packed-tree attention through a dense mask; see `pallas_kernels.packed_tree_attention`."""
  depth = branch_parent.shape[1] if max_depth is None else max_depth
  mask = tree_mask(branch_ids, branch_parent, fork_index, depth)
  return masked_attention(q, k, v, mask, scale=scale, soft_cap=soft_cap)
