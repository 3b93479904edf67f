"""The Triton branch-attention kernel, run by the Pallas interpreter on CPU, against the reference."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallas_cases import BranchFamily, assert_attention_close, branch_cases
from pallas_kernels.branch_attention.block_sizes import gpu_block_sizes
from pallas_kernels.branch_attention.gpu_kernel import branch_attention_gpu
from pallas_kernels.branch_attention.reference import branch_attention_reference


def _family(q_len, group, dtype):
  return BranchFamily(slots=3, q_len=q_len, kv_heads=2, group=group, head_dim=16, page_size=8,
                      pages_per_slot=5, num_pages=11, dtype=dtype)


FAMILIES = [_family(q, g, dt) for g, q, dt in [
    (1, 1, "float32"), (1, 5, "bfloat16"), (3, 1, "bfloat16"), (3, 5, "float32"),
    (8, 1, "float32"), (8, 5, "bfloat16")]]


@functools.lru_cache(maxsize=None)
def _kernel_fn(block_sizes, soft_cap):
  return jax.jit(functools.partial(branch_attention_gpu, scale=0.3, soft_cap=soft_cap,
                                   block_sizes=block_sizes, interpret=True))


@functools.lru_cache(maxsize=None)
def _reference_fn(soft_cap):
  return jax.jit(functools.partial(branch_attention_reference, scale=0.3, soft_cap=soft_cap))


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f"Q{f.q_len}-G{f.group}-{f.dtype}")
@pytest.mark.parametrize("soft_cap", [None, 1.5])
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_gpu_kernel_matches_reference(fam, soft_cap, data):
  case = data.draw(branch_cases(fam))
  # 2 pages (16 keys) per compute block: the smallest tl.dot tile, so blocks split often.
  sizes = gpu_block_sizes(q_len=fam.q_len, group=fam.group, page_size=fam.page_size,
                          pages_per_slot=2)
  assert sizes.pages_per_block == 2 and sizes.rows >= 16
  args = case.jnp_args(fam.dtype)
  got = np.asarray(_kernel_fn(sizes, soft_cap)(*args).astype(jnp.float32))
  want = np.asarray(_reference_fn(soft_cap)(*args).astype(jnp.float32))
  assert np.isfinite(got).all()
  assert_attention_close(got, want, *args[:3], scale=0.3, dtype=fam.dtype)
