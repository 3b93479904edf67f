"""Block-sparse packed-tree kernels (TPU interpreted with NaN memory + race detection, GPU
interpreted) against the reference, and the block lists against the oracle mask."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax._src.pallas.mosaic.interpret import interpret_pallas_call as tpu_interpret

from pallas_cases import assert_attention_close, tree_cases, tree_oracle_mask
from pallas_kernels.interpret_params import tpu_interpret_params
from pallas_kernels.packed_tree.block_sizes import TreeBlockSizes
from pallas_kernels.packed_tree.gpu_kernel import packed_tree_attention_gpu
from pallas_kernels.packed_tree.layout import prepare_tree_inputs
from pallas_kernels.packed_tree.reference import packed_tree_attention_reference
from pallas_kernels.packed_tree.tpu_kernel import packed_tree_attention_tpu

SEQ, BRANCHES, DEPTH = 40, 6, 3


def _cases(group):
  return tree_cases(batch=2, seq_len=SEQ, num_branches=BRANCHES, max_depth=DEPTH, kv_heads=2,
                    group=group, head_dim=16)


@functools.lru_cache(maxsize=None)
def _fn(kind):
  kw = dict(scale=0.3, soft_cap=4.0, max_depth=DEPTH)
  if kind == "reference":
    return jax.jit(functools.partial(packed_tree_attention_reference, **kw))
  if kind == "gpu":
    return jax.jit(functools.partial(packed_tree_attention_gpu, **kw, interpret=True,
                                     block_sizes=TreeBlockSizes(block_q=16, block_k=16)))
  return jax.jit(functools.partial(packed_tree_attention_tpu, **kw,
                                   interpret=tpu_interpret_params(detect_races=True),
                                   block_sizes=TreeBlockSizes(block_q=8, block_k=16)))


@pytest.mark.parametrize("kind", ["tpu", "gpu"])
@pytest.mark.parametrize("group,dtype", [(1, "float32"), (3, "bfloat16")])
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_kernel_matches_reference(kind, group, dtype, data):
  args = data.draw(_cases(group)).jnp_args(dtype)
  got = np.asarray(_fn(kind)(*args).astype(jnp.float32))
  want = np.asarray(_fn("reference")(*args).astype(jnp.float32))
  assert tpu_interpret.races is None or not tpu_interpret.races.races_found
  assert np.isfinite(got).all()
  assert_attention_close(got, want, *args[:3], scale=0.3, dtype=dtype)


@settings(max_examples=10, deadline=None)
@given(case=_cases(1))
def test_block_lists_are_exact(case):
  """A key block is listed for a query block iff the oracle mask has a visible pair in it."""
  visible, kv_list, kv_count = (np.asarray(x) for x in _lists_fn(*case.jnp_args("float32")))
  for row in range(2):
    mask = tree_oracle_mask(case.branch_ids[row], case.branch_parent[row], case.fork_index[row])
    mask = np.pad(mask, ((0, 8), (0, 8)))  # the kernels pad 40 rows to 48
    want = mask.reshape(6, 8, 3, 16).any(axis=(1, 3))
    np.testing.assert_array_equal(visible[row], want)
    count, listed = kv_count[row], kv_list[row]
    for qb in range(6):
      assert listed[qb, :count[qb]].tolist() == np.nonzero(want[qb])[0].tolist()
      assert (listed[qb, count[qb]:] == (listed[qb, count[qb] - 1] if count[qb] else 0)).all()


@jax.jit
def _lists_fn(q, k, v, ids, parent, fork):
  lists = prepare_tree_inputs(q, k, v, ids, parent, fork, max_depth=DEPTH, block_q=8,
                              block_k=16).lists
  return lists.visible, lists.kv_list, lists.kv_count


def test_sibling_blocks_are_skipped():
  """Two long siblings: the second sibling's query blocks never visit the first sibling's keys."""
  ids = np.array([[0] * 16 + [1] * 32 + [2] * 32], np.int32)
  parent = np.array([[-1, 0, 0]], np.int32)
  fork = np.array([[-1, 15, 15]], np.int32)
  x = jnp.zeros((1, 80, 1, 16))
  _, kv_list, kv_count = _lists_for_blocks(x, x, x, jnp.asarray(ids), jnp.asarray(parent),
                                          jnp.asarray(fork))
  count = np.asarray(kv_count[0])
  assert count.tolist() == [1, 2, 3, 2, 3]  # branch 2 never visits branch 1's blocks 1, 2
  assert np.asarray(kv_list[0, 4, :3]).tolist() == [0, 3, 4]


@jax.jit
def _lists_for_blocks(q, k, v, ids, parent, fork):
  lists = prepare_tree_inputs(q, k, v, ids, parent, fork, max_depth=2, block_q=16,
                              block_k=16).lists
  return lists.visible, lists.kv_list, lists.kv_count
