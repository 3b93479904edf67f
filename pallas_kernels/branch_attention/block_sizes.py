"""Block sizes of the branch-attention kernels, chosen from shapes (no hardware here to tune on).

TPU: one grid step per (slot, kv-head block); inside it a loop over compute blocks of `pages_per_block`
pages, double-buffered in VMEM. A compute block of ~512 tokens keeps DMAs large (the decode step is
HBM-bound) while 2 buffers x (K, V) stay far below the 16 MiB default scoped VMEM of a v5e.
GPU (Triton): one program per (slot, kv head); compute blocks of 64 tokens keep K/V tiles in registers
(64 x 128 bf16 = 16 KiB per tile per program at 4 warps).
"""

from __future__ import annotations

import dataclasses

LANES = 128
TPU_TARGET_BLOCK_TOKENS = 512
TPU_VMEM_BUDGET_BYTES = 8 * 1024 * 1024
GPU_TARGET_BLOCK_TOKENS = 64
GPU_MIN_DOT_DIM = 16


def next_power_of_2(x: int) -> int:
  return 1 if x <= 1 else 1 << (x - 1).bit_length()


@dataclasses.dataclass(frozen=True)
class TpuBlockSizes:
  heads_per_block: int  # kv heads per grid step; heads_per_block * head_dim is a lane multiple or all
  pages_per_block: int  # pages per compute block (one DMA each, double-buffered)


@dataclasses.dataclass(frozen=True)
class GpuBlockSizes:
  pages_per_block: int  # power of 2
  rows: int  # query rows (Q * group) padded to a power of 2 >= 16, as tl.dot needs
  num_warps: int = 4
  num_stages: int = 2


def tpu_heads_per_block(num_kv_heads: int, head_dim: int) -> int:
  """Smallest divisor of Hkv whose heads fill whole 128-lane vregs, else all heads.

  A block of hb heads is DMAed as one lane window [hb * D] of each page, so it must be lane aligned
  (hb * D % 128 == 0) or the whole [Hkv * D] row.
  """
  for hb in range(1, num_kv_heads + 1):
    if num_kv_heads % hb == 0 and (hb * head_dim) % LANES == 0:
      return hb
  return num_kv_heads


def tpu_block_sizes(
    *, num_kv_heads: int, head_dim: int, page_size: int, pages_per_slot: int, itemsize: int
) -> TpuBlockSizes:
  hb = tpu_heads_per_block(num_kv_heads, head_dim)
  ppb = max(1, min(pages_per_slot, TPU_TARGET_BLOCK_TOKENS // page_size))
  # 2 buffers x (K, V) x block bytes must fit the budget.
  while ppb > 1 and 4 * ppb * page_size * hb * head_dim * itemsize > TPU_VMEM_BUDGET_BYTES:
    ppb //= 2
  return TpuBlockSizes(heads_per_block=hb, pages_per_block=ppb)


def gpu_block_sizes(*, q_len: int, group: int, page_size: int, pages_per_slot: int) -> GpuBlockSizes:
  ppb = max(1, GPU_TARGET_BLOCK_TOKENS // page_size)
  ppb = min(ppb, next_power_of_2(pages_per_slot))
  ppb = max(ppb, next_power_of_2(-(-GPU_MIN_DOT_DIM // page_size)))  # tl.dot needs >= 16 keys
  rows = max(GPU_MIN_DOT_DIM, next_power_of_2(q_len * group))
  return GpuBlockSizes(pages_per_block=ppb, rows=rows)
