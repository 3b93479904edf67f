"""The pure-jnp branch attention against a dense float64 oracle written from the contract."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallas_cases import (BranchCase, BranchFamily, assert_attention_close, branch_cases,
                          branch_oracle)
from pallas_kernels.branch_attention.reference import branch_attention_reference

FAMILIES = [
    BranchFamily(slots=4, q_len=1, kv_heads=2, group=1, head_dim=8, page_size=4, pages_per_slot=5,
                 num_pages=14, dtype="float32"),
    BranchFamily(slots=3, q_len=5, kv_heads=1, group=3, head_dim=8, page_size=4, pages_per_slot=4,
                 num_pages=9, dtype="float32"),
    BranchFamily(slots=3, q_len=3, kv_heads=2, group=8, head_dim=16, page_size=8, pages_per_slot=3,
                 num_pages=8, dtype="bfloat16"),
]


@functools.lru_cache(maxsize=None)
def _jitted(soft_cap):
  return jax.jit(functools.partial(branch_attention_reference, scale=0.3, soft_cap=soft_cap))


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f"Q{f.q_len}-G{f.group}-{f.dtype}")
@pytest.mark.parametrize("soft_cap", [None, 2.0])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_reference_matches_dense_oracle(fam, soft_cap, data):
  case = data.draw(branch_cases(fam))
  out = _jitted(soft_cap)(*case.jnp_args(fam.dtype))
  want = branch_oracle(case, scale=0.3, soft_cap=soft_cap, dtype=fam.dtype)
  got = np.asarray(out.astype(jnp.float32))
  assert np.isfinite(got).all()
  assert_attention_close(got, want, *case.jnp_args(fam.dtype)[:3], scale=0.3, dtype=fam.dtype,
                         exact_reference=True)


def test_idle_slot_attends_to_its_block_token_only():
  """Length 0, Q = 1, causal: the only visible key is the block token itself -> output = its v."""
  k = jnp.zeros((3, 4, 1, 8)).at[2, 0].set(1.0)
  v = jnp.full((3, 4, 1, 8), jnp.nan).at[2, 0].set(7.0)  # everything else is garbage
  q = jnp.ones((1, 1, 2, 8))
  out = jax.jit(functools.partial(branch_attention_reference, scale=1.0))(
      q, k, v, jnp.array([[2, 0]], jnp.int32), jnp.array([0], jnp.int32), None)
  np.testing.assert_array_equal(np.asarray(out), 7.0)


def test_query_that_sees_nothing_returns_zeros():
  mask = jnp.zeros((1, 2, 2), bool).at[0, 1, 0].set(True)
  k = jnp.ones((2, 4, 1, 8))
  out = jax.jit(functools.partial(branch_attention_reference, scale=1.0))(
      jnp.ones((1, 2, 1, 8)), k, k * 3, jnp.array([[1, 0]], jnp.int32), jnp.array([0], jnp.int32),
      mask)
  np.testing.assert_array_equal(np.asarray(out[0, 0]), 0.0)
  np.testing.assert_allclose(np.asarray(out[0, 1]), 3.0)


def test_runs_inside_while_loop_with_traced_tables():
  """jit + while_loop: lengths and tables are loop-carried values (as in the engine)."""
  rng = np.random.default_rng(0)
  k = jnp.asarray(rng.standard_normal((6, 4, 1, 8)), jnp.float32)
  q = jnp.asarray(rng.standard_normal((2, 1, 2, 8)), jnp.float32)
  tables = jnp.array([[0, 1, 2], [3, 4, 5]], jnp.int32)

  @jax.jit
  def run(lengths):
    def body(carry):
      lengths, acc = carry
      out = branch_attention_reference(q, k, k, tables, lengths, None, scale=0.5)
      return lengths + 1, acc + out

    return jax.lax.while_loop(lambda c: c[0][0] < 5, body, (lengths, jnp.zeros_like(q)))

  _, acc = run(jnp.array([0, 3], jnp.int32))
  one = jax.jit(functools.partial(branch_attention_reference, scale=0.5))
  expect = sum(one(q, k, k, tables, jnp.array([i, 3 + i], jnp.int32), None) for i in range(5))
  np.testing.assert_allclose(np.asarray(acc), np.asarray(expect), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_off_by_one_length_is_outside_the_tolerance(dtype):
  """The tolerance is not vacuous: an oracle that misses the oldest of 64 keys (a length off by one
  in a kernel) fails it, in fp32 and in bf16."""
  rng = np.random.default_rng(1)
  fam = BranchFamily(slots=2, q_len=1, kv_heads=2, group=2, head_dim=16, page_size=8,
                     pages_per_slot=8, num_pages=16, dtype=dtype)
  shape = (fam.num_pages, fam.page_size, fam.kv_heads, fam.head_dim)
  case = BranchCase(
      q=rng.standard_normal((2, 1, 4, 16)).astype(np.float32),
      k_pages=rng.standard_normal(shape).astype(np.float32),
      v_pages=rng.standard_normal(shape).astype(np.float32),
      page_tables=np.stack([np.arange(8), np.arange(8, 16)]).astype(np.int32),
      lengths=np.array([63, 63], np.int32), block_mask=np.ones((2, 1, 1), bool))
  args = case.jnp_args(dtype)
  got = np.asarray(_jitted(None)(*args).astype(jnp.float32))
  assert_attention_close(got, branch_oracle(case, scale=0.3, dtype=dtype), *args[:3], scale=0.3,
                         dtype=dtype, exact_reference=True)
  # Drop the oldest key: shift every slot's view by one position and shorten it.
  shifted = dataclasses.replace(
      case, k_pages=np.roll(case.k_pages.reshape(2, 64, 2, 16), -1, axis=1).reshape(shape),
      v_pages=np.roll(case.v_pages.reshape(2, 64, 2, 16), -1, axis=1).reshape(shape),
      lengths=case.lengths - 1)
  with pytest.raises(AssertionError, match="differ by more than"):
    assert_attention_close(got, branch_oracle(shifted, scale=0.3, dtype=dtype), *args[:3],
                           scale=0.3, dtype=dtype, exact_reference=True)
