"""Block sizes of the packed-tree kernels (chosen from shapes; no hardware here to tune on).

TPU: query blocks of `block_q` tokens x G grouped heads as rows (~512 rows keep the MXU busy and the
fp32 accumulator at 512 x D x 4 bytes), key blocks of 128 tokens (one lane tile of the score block).
GPU (Triton): 64 x 64 tiles, 4 warps: the usual flash-attention tile for head_dim <= 128.
"""

from __future__ import annotations

import dataclasses

from pallas_kernels.branch_attention.block_sizes import next_power_of_2

TPU_TARGET_ROWS = 512


@dataclasses.dataclass(frozen=True)
class TreeBlockSizes:
  block_q: int  # query tokens per block
  block_k: int  # key tokens per block
  num_warps: int = 4  # GPU only
  num_stages: int = 2  # GPU only


def tpu_block_sizes(*, seq_len: int, group: int) -> TreeBlockSizes:
  rows = max(8, TPU_TARGET_ROWS // max(group, 1))
  block_q = min(256, 1 << (rows.bit_length() - 1))  # largest power of 2 <= target rows / G
  block_q = min(block_q, max(8, next_power_of_2(seq_len)))
  block_k = 128 if seq_len > 64 else max(16, next_power_of_2(seq_len))
  return TreeBlockSizes(block_q=block_q, block_k=block_k)


def gpu_block_sizes(*, seq_len: int) -> TreeBlockSizes:
  size = max(16, min(64, next_power_of_2(seq_len)))
  return TreeBlockSizes(block_q=size, block_k=size)
