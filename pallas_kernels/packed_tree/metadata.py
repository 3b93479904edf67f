"""Per-token ancestry tables of a packed tree: what every kernel needs instead of a dense mask.

A branch at depth d (root = 0) is identified by (depth, branch id). For every query token i of branch
b and every level d <= depth(b), `ancestor[i, d]` is b's ancestor at level d (b itself at d = depth(b))
and `bound[i, d]` is the last row index i may see in that ancestor: the fork index of the child on the
path for a proper ancestor, i itself for its own branch (both capped at i, since j <= i always holds).
For every key token j: `key_depth[j]` = depth of its branch, `key_branch[j]` = its branch.

Then i sees j iff there is a level d with key_depth[j] == d, ancestor[i, d] == key_branch[j] and
j <= bound[i, d] (`tree_visible`): max_depth elementwise tests per (query, key), no gather.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

NO_BRANCH = -2  # ancestor slot of a level a token does not have: matches no key branch (>= -1)


@dataclasses.dataclass(frozen=True)
class TreeMetadata:
  ancestor: jax.Array  # [B, T, max_depth] int32, NO_BRANCH past the token's depth / for padding
  bound: jax.Array  # [B, T, max_depth] int32, -1 where ancestor is NO_BRANCH
  key_depth: jax.Array  # [B, T] int32, -1 for padding tokens
  key_branch: jax.Array  # [B, T] int32, -1 for padding tokens
  branch_bound: jax.Array  # [B, NB, NB] int32: [b, a] = fork bound of ancestor a for branch b
  #                          (a large value for a == b, -1 when a is not an ancestor of b)


BIG = 2**30


def ancestor_chains(branch_parent: jax.Array, max_depth: int) -> jax.Array:
  """[B, NB] parents -> [B, NB, max_depth]: chain[b, k] = k-th ancestor of b (k = 0 is b), else -1."""
  bsz, nb = branch_parent.shape
  batch = jnp.arange(bsz)[:, None]
  links = [jnp.broadcast_to(jnp.arange(nb, dtype=jnp.int32), (bsz, nb))]
  for _ in range(max_depth - 1):
    prev = links[-1]
    parent = branch_parent[batch, jnp.clip(prev, 0, nb - 1)]
    links.append(jnp.where(prev >= 0, parent, -1).astype(jnp.int32))
  return jnp.stack(links, axis=-1)


def build_metadata(
    branch_ids: jax.Array,  # [B, T] int32, -1 = padding
    branch_parent: jax.Array,  # [B, NB] int32, -1 = root
    fork_index: jax.Array,  # [B, NB] int32, -1 = root
    max_depth: int,
) -> TreeMetadata:
  """Builds the per-token ancestry tables (jit-able, O(T * max_depth + NB^2 * max_depth))."""
  bsz, t = branch_ids.shape
  nb = branch_parent.shape[1]
  batch = jnp.arange(bsz)[:, None]
  chains = ancestor_chains(branch_parent.astype(jnp.int32), max_depth)  # [B, NB, Dm]
  depth = jnp.sum(chains >= 0, axis=-1) - 1  # [B, NB]
  levels = jnp.arange(max_depth, dtype=jnp.int32)
  # Level-d ancestor of b is chain[b, depth[b] - d]; its bound is the fork of the level-(d+1) ancestor.
  up = depth[..., None] - levels  # [B, NB, Dm]
  has_level = up >= 0
  level_branch = jnp.take_along_axis(chains, jnp.clip(up, 0, max_depth - 1), axis=-1)
  child = jnp.take_along_axis(chains, jnp.clip(up - 1, 0, max_depth - 1), axis=-1)
  child_fork = fork_index[batch[..., None], jnp.clip(child, 0, nb - 1)]
  level_bound = jnp.where(up == 0, BIG, child_fork)
  level_branch = jnp.where(has_level, level_branch, NO_BRANCH).astype(jnp.int32)
  level_bound = jnp.where(has_level, level_bound, -1).astype(jnp.int32)

  ids = branch_ids.astype(jnp.int32)
  real = ids >= 0
  safe = jnp.clip(ids, 0, nb - 1)
  rows = jnp.arange(t, dtype=jnp.int32)[None, :, None]
  ancestor = jnp.where(real[..., None], level_branch[batch, safe], NO_BRANCH)
  bound = jnp.where(real[..., None], jnp.minimum(level_bound[batch, safe], rows), -1)
  key_depth = jnp.where(real, depth[batch, safe], -1).astype(jnp.int32)

  # branch_bound[b, a]: max over levels of (bound where level_branch == a), -1 if none.
  onehot = level_branch[..., None] == jnp.arange(nb)  # [B, NB, Dm, NB]
  branch_bound = jnp.max(jnp.where(onehot, level_bound[..., None], -1), axis=2)
  return TreeMetadata(
      ancestor=ancestor.astype(jnp.int32), bound=bound.astype(jnp.int32),
      key_depth=key_depth, key_branch=jnp.where(real, ids, -1), branch_bound=branch_bound)


def tree_visible(
    ancestor: list[jax.Array],  # max_depth arrays [R, 1] int32
    bound: list[jax.Array],  # max_depth arrays [R, 1] int32
    key_depth: jax.Array,  # [1, K] int32
    key_branch: jax.Array,  # [1, K] int32
    key_pos: jax.Array,  # [1, K] int32
) -> jax.Array:  # [R, K] bool
  """Query row sees key iff some level d has key_depth == d, ancestor[d] == key_branch, pos <= bound[d].

  Elementwise only: runs in the reference, in Mosaic and in Triton.
  """
  visible = None
  for d, (anc, bnd) in enumerate(zip(ancestor, bound)):
    hit = (key_depth == d) & (anc == key_branch) & (key_pos <= bnd)
    visible = hit if visible is None else visible | hit
  return visible
