"""Input validation for packed-tree attention: static (shapes, dtypes) and dynamic (tree values)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from pallas_kernels.branch_attention.validate import FLOAT_DTYPES


def check_static(q, k, v, branch_ids, branch_parent, fork_index, *, scale, soft_cap,
                 max_depth) -> None:
  if len(q.shape) != 4 or len(k.shape) != 4:
    raise ValueError(f"q [B, T, Hq, D] and k [B, T, Hkv, D] must have 4 dims, got {q.shape}, "
                     f"{k.shape}")
  b, t, hq, d = q.shape
  if tuple(v.shape) != tuple(k.shape):
    raise ValueError(f"v shape {v.shape} != k shape {k.shape}")
  if k.shape[0] != b or k.shape[1] != t or k.shape[3] != d:
    raise ValueError(f"k {k.shape} must be [B={b}, T={t}, Hkv, D={d}]")
  if hq % k.shape[2]:
    raise ValueError(
        f"q heads ({hq}) must be a multiple of kv heads ({k.shape[2]}) for grouped-query attention")
  for name, x in (("q", q), ("k", k), ("v", v)):
    if jnp.dtype(x.dtype) not in FLOAT_DTYPES:
      raise ValueError(f"{name} dtype must be one of float32/bfloat16/float16, got {x.dtype}")
  if not (q.dtype == k.dtype == v.dtype):
    raise ValueError(f"q, k, v must share a dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
  if tuple(branch_ids.shape) != (b, t) or branch_ids.dtype != jnp.int32:
    raise ValueError(f"branch_ids must be int32 [B={b}, T={t}], got {branch_ids.dtype} "
                     f"{branch_ids.shape}")
  for name, x in (("branch_parent", branch_parent), ("fork_index", fork_index)):
    if len(x.shape) != 2 or x.shape[0] != b or x.dtype != jnp.int32:
      raise ValueError(f"{name} must be int32 [B={b}, NB], got {x.dtype} {x.shape}")
  if tuple(branch_parent.shape) != tuple(fork_index.shape):
    raise ValueError(f"branch_parent {branch_parent.shape} and fork_index {fork_index.shape} differ")
  if max_depth is not None and not (isinstance(max_depth, int) and max_depth >= 1):
    raise ValueError(f"max_depth must be None or a Python int >= 1, got {max_depth!r}")
  if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
    raise ValueError(f"scale must be a positive finite Python number, got {scale!r}")
  if soft_cap is not None and not (isinstance(soft_cap, (int, float)) and soft_cap > 0):
    raise ValueError(f"soft_cap must be None or a positive Python number, got {soft_cap!r}")


def check_gpu_kernel(q) -> None:
  d = q.shape[3]
  if d & (d - 1) or d < 16:
    raise ValueError(f"the GPU kernel needs a power-of-2 head_dim >= 16, got {d}")


def check_values(branch_ids, branch_parent, fork_index, *, max_depth: int) -> None:
  """Branch ids in range; every used branch reaches the root within max_depth levels through
  parents whose fork token is a row of the parent branch (needs concrete arrays)."""
  ids, parents, forks = (np.asarray(x) for x in (branch_ids, branch_parent, fork_index))
  nb, t = parents.shape[1], ids.shape[1]
  if ((ids < -1) | (ids >= nb)).any():
    raise ValueError(f"branch_ids must be in [-1, NB={nb}), got {ids[(ids < -1) | (ids >= nb)][:4]}")
  for row in range(ids.shape[0]):
    for branch in np.unique(ids[row][ids[row] >= 0]):
      node, levels = int(branch), 1
      while parents[row, node] >= 0:
        parent, fork = int(parents[row, node]), int(forks[row, node])
        if parent >= nb:
          raise ValueError(f"row {row}: branch {node} has parent {parent} outside [-1, {nb})")
        if not (0 <= fork < t) or ids[row, fork] != parent:
          raise ValueError(f"row {row}: fork_index {fork} of branch {node} is not a token of its "
                           f"parent branch {parent}")
        node, levels = parent, levels + 1
        if levels > max_depth:
          raise ValueError(f"row {row}: branch {int(branch)} is deeper than max_depth={max_depth} "
                           "(or its parents form a cycle)")
