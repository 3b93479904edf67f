"""The Mosaic branch-attention kernel, interpreted on CPU, against the reference.

Interpret mode fills uninitialised VMEM with NaN and runs the race detector, so a kernel that reads
a buffer it did not fill, or overwrites a buffer still being read, fails here.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax._src.pallas.mosaic.interpret import interpret_pallas_call as tpu_interpret

from pallas_cases import BranchFamily, assert_attention_close, branch_cases
from pallas_kernels.branch_attention.block_sizes import TpuBlockSizes, tpu_heads_per_block
from pallas_kernels.branch_attention.reference import branch_attention_reference
from pallas_kernels.branch_attention.tpu_kernel import branch_attention_tpu
from pallas_kernels.interpret_params import tpu_interpret_params


def _family(q_len, group, dtype, kv_heads=2, head_dim=32):
  page_size = 8 if dtype == "float32" else 16  # whole sublane tiles for the VMEM page buffers
  return BranchFamily(slots=3, q_len=q_len, kv_heads=kv_heads, group=group, head_dim=head_dim,
                      page_size=page_size, pages_per_slot=4, num_pages=9, dtype=dtype)


# GQA ratio x (Q = 1 decode, Q = 5 tree block) x dtype, covered pairwise in 6 compiled families.
FAMILIES = [_family(q, g, dt) for g, q, dt in [
    (1, 1, "float32"), (1, 5, "bfloat16"), (3, 1, "bfloat16"), (3, 5, "float32"),
    (8, 1, "float32"), (8, 5, "bfloat16")]]


@functools.lru_cache(maxsize=None)
def _kernel_fn(block_sizes, soft_cap):
  return jax.jit(functools.partial(
      branch_attention_tpu, scale=0.3, soft_cap=soft_cap, block_sizes=block_sizes,
      interpret=tpu_interpret_params(detect_races=True)))


@functools.lru_cache(maxsize=None)
def _reference_fn(soft_cap):
  return jax.jit(functools.partial(branch_attention_reference, scale=0.3, soft_cap=soft_cap))


def _check(fam, case, block_sizes, soft_cap=None):
  args = case.jnp_args(fam.dtype)
  got = np.asarray(_kernel_fn(block_sizes, soft_cap)(*args).astype(jnp.float32))
  want = np.asarray(_reference_fn(soft_cap)(*args).astype(jnp.float32))
  assert tpu_interpret.races is None or not tpu_interpret.races.races_found
  assert np.isfinite(got).all()
  assert_attention_close(got, want, *args[:3], scale=0.3, dtype=fam.dtype)


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f"Q{f.q_len}-G{f.group}-{f.dtype}")
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_tpu_kernel_matches_reference(fam, data):
  # head_dim 32: both kv heads share one lane window (block-diagonal queries). Two pages per
  # compute block: blocks straddle the committed / in-flight boundary, some are only partly needed.
  hb = tpu_heads_per_block(fam.kv_heads, fam.head_dim)
  assert hb == 2
  _check(fam, data.draw(branch_cases(fam)), TpuBlockSizes(heads_per_block=hb, pages_per_block=2))


@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_tpu_kernel_lane_aligned_heads_and_soft_cap(data):
  """head_dim 128: one kv head per grid step, DMAed as a 128-lane window of each page."""
  fam = _family(4, 3, "float32", kv_heads=2, head_dim=128)
  assert tpu_heads_per_block(fam.kv_heads, fam.head_dim) == 1
  _check(fam, data.draw(branch_cases(fam)), TpuBlockSizes(heads_per_block=1, pages_per_block=3),
         soft_cap=1.5)
