"""Packed-tree visibility and the reference against oracles that walk the contract's rule."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pallas_cases import assert_attention_close, tree_cases, tree_oracle, tree_oracle_mask
from pallas_kernels.packed_tree.reference import packed_tree_attention_reference, tree_mask


@settings(max_examples=25, deadline=None)
@given(case=tree_cases(batch=2, seq_len=24, num_branches=6, max_depth=4, kv_heads=1, group=1,
                       head_dim=4))
def test_tree_mask_matches_pair_walk(case):
  args = (jnp.asarray(case.branch_ids), jnp.asarray(case.branch_parent),
          jnp.asarray(case.fork_index))
  got = np.asarray(_mask_fn(4)(*args))
  for row in range(2):
    want = tree_oracle_mask(case.branch_ids[row], case.branch_parent[row], case.fork_index[row])
    np.testing.assert_array_equal(got[row], want)


@functools.lru_cache(maxsize=None)
def _mask_fn(max_depth):
  return jax.jit(functools.partial(tree_mask, max_depth=max_depth))


@functools.lru_cache(maxsize=None)
def _reference_fn(max_depth):
  return jax.jit(functools.partial(packed_tree_attention_reference, scale=0.4, soft_cap=3.0,
                                   max_depth=max_depth))


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_reference_matches_dense_oracle(dtype, data):
  case = data.draw(tree_cases(batch=2, seq_len=20, num_branches=5, max_depth=3, kv_heads=2,
                              group=3, head_dim=8))
  got = np.asarray(_reference_fn(3)(*case.jnp_args(dtype)).astype(jnp.float32))
  want = tree_oracle(case, scale=0.4, soft_cap=3.0, dtype=dtype)
  assert np.isfinite(got).all()
  assert_attention_close(got, want, *case.jnp_args(dtype)[:3], scale=0.4, dtype=dtype,
                         exact_reference=True)


def test_apar_example():
  """Root forks two children at its [Fork] tokens; a child sees the root up to its fork only."""
  #          root: rows 0-5 (forks at 2 and 4), child 1: rows 6-7, child 2: rows 8-9, padding: 10-11
  ids = jnp.array([[0, 0, 0, 0, 0, 0, 1, 1, 2, 2, -1, -1]], jnp.int32)
  parent = jnp.array([[-1, 0, 0]], jnp.int32)
  fork = jnp.array([[-1, 2, 4]], jnp.int32)
  mask = np.asarray(_mask_fn(2)(ids, parent, fork))[0]
  assert mask[7].nonzero()[0].tolist() == [0, 1, 2, 6, 7]
  assert mask[9].nonzero()[0].tolist() == [0, 1, 2, 3, 4, 8, 9]
  assert mask[5].nonzero()[0].tolist() == [0, 1, 2, 3, 4, 5]  # the root never sees children
  assert not mask[10:].any() and not mask[:, 10:].any()
  q = jnp.ones((1, 12, 1, 4))
  out = jax.jit(functools.partial(packed_tree_attention_reference, scale=1.0))(
      q, q, q * jnp.nan, ids, parent, fork)
  assert np.isnan(np.asarray(out[0, :10])).all()  # real rows do read v
  np.testing.assert_array_equal(np.asarray(out[0, 10:]), 0.0)  # padding rows: zeros
