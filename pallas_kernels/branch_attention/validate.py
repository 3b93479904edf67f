"""Input validation for branch attention: static (shapes, dtypes, at trace time) and dynamic (values).

Static checks raise `ValueError` while tracing. Dynamic checks need concrete arrays; the dispatcher runs
them when its inputs are not tracers, and the engine can call `check_values` in a debug path.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

FLOAT_DTYPES = (jnp.dtype(jnp.float32), jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def _shape(name: str, x, ndim: int) -> tuple[int, ...]:
  if not hasattr(x, "shape") or len(x.shape) != ndim:
    raise ValueError(f"{name} must have {ndim} dims, got shape {getattr(x, 'shape', None)}")
  return tuple(x.shape)


def check_static(q, k_pages, v_pages, page_tables, lengths, block_mask, *, scale, soft_cap) -> None:
  """Shapes, dtypes, head ratio, scale / soft-cap values."""
  s, q_len, hq, d = _shape("q [S, Q, Hq, D]", q, 4)
  p, page_size, hkv, dk = _shape("k_pages [P, page_size, Hkv, D]", k_pages, 4)
  if tuple(v_pages.shape) != tuple(k_pages.shape):
    raise ValueError(f"v_pages shape {v_pages.shape} != k_pages shape {k_pages.shape}")
  if dk != d:
    raise ValueError(f"head_dim of q ({d}) != head_dim of k_pages ({dk})")
  if hq % hkv:
    raise ValueError(
        f"q heads ({hq}) must be a multiple of kv heads ({hkv}) for grouped-query attention")
  if q_len < 1 or p < 1 or page_size < 1:
    raise ValueError(f"empty dimension: Q={q_len}, P={p}, page_size={page_size}")
  for name, x in (("q", q), ("k_pages", k_pages), ("v_pages", v_pages)):
    if jnp.dtype(x.dtype) not in FLOAT_DTYPES:
      raise ValueError(f"{name} dtype must be one of float32/bfloat16/float16, got {x.dtype}")
  if not (q.dtype == k_pages.dtype == v_pages.dtype):
    raise ValueError(
        f"q, k_pages, v_pages must share a dtype, got {q.dtype}, {k_pages.dtype}, {v_pages.dtype}")
  ts, _ = _shape("page_tables [S, pages_per_slot]", page_tables, 2)
  if ts != s or page_tables.dtype != jnp.int32:
    raise ValueError(
        f"page_tables must be int32 [S={s}, pages_per_slot], got {page_tables.dtype} "
        f"{page_tables.shape}")
  if tuple(lengths.shape) != (s,) or lengths.dtype != jnp.int32:
    raise ValueError(f"lengths must be int32 [S={s}], got {lengths.dtype} {lengths.shape}")
  if block_mask is not None:
    if tuple(block_mask.shape) != (s, q_len, q_len) or block_mask.dtype != jnp.bool_:
      raise ValueError(
          f"block_mask must be bool [S, Q, Q] = [{s}, {q_len}, {q_len}], got {block_mask.dtype} "
          f"{block_mask.shape}")
  if not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
    raise ValueError(f"scale must be a positive finite Python number, got {scale!r}")
  if soft_cap is not None and not (isinstance(soft_cap, (int, float)) and soft_cap > 0):
    raise ValueError(f"soft_cap must be None or a positive Python number, got {soft_cap!r}")


def check_tpu_kernel(q, k_pages) -> None:
  """Layout rules of the Mosaic kernel: pages must fill whole sublane tiles of the VMEM buffers."""
  page_size = k_pages.shape[1]
  rows_per_tile = 8 * (4 // jnp.dtype(k_pages.dtype).itemsize)
  if page_size % rows_per_tile:
    raise ValueError(
        f"the TPU kernel needs page_size to be a multiple of {rows_per_tile} for "
        f"{k_pages.dtype} pages, got {page_size}")


def check_gpu_kernel(q, k_pages) -> None:
  """Triton works on power-of-2 tiles, and tl.dot needs every dimension >= 16."""
  page_size, d = k_pages.shape[1], k_pages.shape[3]
  for name, x in (("page_size", page_size), ("head_dim", d)):
    if x & (x - 1):
      raise ValueError(f"the GPU kernel needs a power-of-2 {name}, got {x}")
  if d < 16:
    raise ValueError(f"the GPU kernel needs head_dim >= 16, got {d}")


def is_concrete(*xs) -> bool:
  return all(x is None or not isinstance(x, jax.core.Tracer) for x in xs)


def check_values(page_tables, lengths, *, q_len: int, page_size: int, num_pages: int) -> None:
  """Lengths in range and every page a slot will read inside the pool (needs concrete arrays)."""
  tables = np.asarray(page_tables)
  lens = np.asarray(lengths)
  capacity = tables.shape[1] * page_size
  if (lens < 0).any():
    raise ValueError(f"lengths must be >= 0, got {lens[lens < 0][:4].tolist()}")
  over = lens + q_len > capacity
  if over.any():
    slot = int(np.argmax(over))
    raise ValueError(
        f"slot {slot}: length {int(lens[slot])} + Q {q_len} exceeds the page table capacity "
        f"{capacity} (pages_per_slot {tables.shape[1]} x page_size {page_size})")
  used = np.arange(tables.shape[1])[None, :] * page_size < (lens + q_len)[:, None]
  bad = used & ((tables < 0) | (tables >= num_pages))
  if bad.any():
    slot, idx = (int(v) for v in np.argwhere(bad)[0])
    raise ValueError(
        f"page table out of range: slot {slot} entry {idx} = {int(tables[slot, idx])}, "
        f"pool has {num_pages} pages")
