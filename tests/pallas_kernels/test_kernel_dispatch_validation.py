"""The public entry points: impl resolution, the impl switch, and input validation messages."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import pallas_kernels as pk
from pallas_cases import assert_attention_close


def _branch_inputs(dtype=jnp.float32, page_size=8):
  rng = np.random.default_rng(0)
  k = jnp.asarray(rng.standard_normal((6, page_size, 2, 32)), dtype)
  v = jnp.asarray(rng.standard_normal((6, page_size, 2, 32)), dtype)
  q = jnp.asarray(rng.standard_normal((2, 1, 6, 32)), dtype)
  tables = jnp.array([[0, 1, 2], [3, 4, 5]], jnp.int32)
  return q, k, v, tables, jnp.array([5, 9], jnp.int32)


def test_resolve_impl():
  assert pk.resolve_impl("auto", "cpu") == "reference"
  assert pk.resolve_impl("auto", "tpu") == "pallas_tpu"
  assert pk.resolve_impl("auto", "cuda") == "pallas_gpu"
  assert pk.resolve_impl("pallas", "gpu") == "pallas_gpu"
  assert pk.resolve_impl("pallas_interpret", "tpu") == "pallas_interpret"
  assert pk.resolve_impl("reference", "tpu") == "reference"
  with pytest.raises(ValueError, match="pallas_interpret"):
    pk.resolve_impl("pallas", "cpu")
  with pytest.raises(ValueError, match="impl must be one of"):
    pk.resolve_impl("triton")


def test_impl_switch_inside_while_loop():
  """reference and pallas_interpret agree, jitted with traced lengths in a while_loop."""
  q, k, v, tables, lengths = _branch_inputs()

  def run(impl):
    @jax.jit
    def loop(lengths):
      def body(carry):
        lengths, acc = carry
        out = pk.branch_attention(q, k, v, tables, lengths, None, scale=0.2, impl=impl)
        return lengths + 3, acc + out
      return jax.lax.while_loop(lambda c: c[0][0] < 14, body, (lengths, jnp.zeros_like(q)))[1]
    return np.asarray(loop(lengths))

  assert_attention_close(run("pallas_interpret"), run("reference"), q, k, v, scale=0.2,
                         dtype="float32", calls=3)  # lengths 5, 8, 11 (then 14 stops the loop)


def test_packed_tree_impl_switch():
  ids = jnp.array([[0, 0, 0, 1, 1, 2, 2, -1]], jnp.int32)
  parent = jnp.array([[-1, 0, 0]], jnp.int32)
  fork = jnp.array([[-1, 1, 2]], jnp.int32)
  rng = np.random.default_rng(1)
  q = jnp.asarray(rng.standard_normal((1, 8, 2, 16)), jnp.float32)
  k = jnp.asarray(rng.standard_normal((1, 8, 1, 16)), jnp.float32)
  outs = [pk.packed_tree_attention(q, k, k, ids, parent, fork, scale=0.3, impl=impl, max_depth=2)
          for impl in ("reference", "pallas_interpret")]
  assert_attention_close(outs[1], outs[0], q, k, k, scale=0.3, dtype="float32")


@pytest.mark.parametrize("change,message", [
    (dict(q=jnp.zeros((2, 1, 5, 32))), "multiple of kv heads"),
    (dict(q=jnp.zeros((2, 1, 6, 32), jnp.int32)), "dtype must be one of"),
    (dict(q=jnp.zeros((2, 1, 6, 32), jnp.bfloat16)), "share a dtype"),
    (dict(tables=jnp.zeros((2, 3), jnp.int64 if jax.config.x64_enabled else jnp.int16)),
     "page_tables must be int32"),
    (dict(lengths=jnp.array([1.0, 2.0])), "lengths must be int32"),
    (dict(mask=jnp.ones((2, 2, 2), bool)), "block_mask must be bool"),
    (dict(tables=jnp.array([[9, 1, 2], [3, 4, 5]], jnp.int32)), "page table out of range"),
    (dict(lengths=jnp.array([5, 24], jnp.int32)), "exceeds the page table capacity"),
    (dict(lengths=jnp.array([-1, 3], jnp.int32)), "lengths must be >= 0"),
    (dict(scale=0.0), "scale must be"),
])
def test_branch_validation_messages(change, message):
  q, k, v, tables, lengths = _branch_inputs()
  args = dict(q=q, tables=tables, lengths=lengths, mask=None, scale=0.2)
  args.update(change)
  with pytest.raises(ValueError, match=message):
    pk.branch_attention(args["q"], k, v, args["tables"], args["lengths"], args["mask"],
                        scale=args["scale"], impl="reference")


def test_unused_table_entries_may_be_out_of_range():
  """Only pages a slot reads are checked; entries past them are ignored (and clamped in kernels)."""
  q, k, v, _, lengths = _branch_inputs()
  tables = jnp.array([[0, 1, -7], [3, 4, 99]], jnp.int32)  # slot 0 reads pages 0..0, slot 1 0..1
  ref = pk.branch_attention(q, k, v, tables, lengths, scale=0.2, impl="reference")
  out = pk.branch_attention(q, k, v, tables, lengths, scale=0.2, impl="pallas_interpret")
  assert_attention_close(out, ref, q, k, v, scale=0.2, dtype="float32")


def test_tpu_kernel_page_size_rule():
  q, k, v, tables, lengths = _branch_inputs(jnp.bfloat16, page_size=8)
  with pytest.raises(ValueError, match="multiple of 16"):
    pk.branch_attention(q, k, v, tables, lengths, scale=0.2, impl="pallas_interpret")


@pytest.mark.parametrize("parent,fork,message", [
    ([[-1, 0, 1]], [[-1, 1, 3]], "deeper than max_depth"),
    ([[-1, 2, 1]], [[-1, 3, 3]], "deeper than max_depth|not a token"),
    ([[-1, 0, 0]], [[-1, 3, 1]], "not a token of its parent"),
])
def test_packed_tree_value_validation(parent, fork, message):
  ids = jnp.array([[0, 0, 1, 1, 2, 2]], jnp.int32)
  x = jnp.zeros((1, 6, 1, 16))
  with pytest.raises(ValueError, match=message):
    pk.packed_tree_attention(x, x, x, ids, jnp.array(parent, jnp.int32),
                             jnp.array(fork, jnp.int32), scale=1.0, impl="reference", max_depth=2)


def test_packed_tree_shape_validation():
  x = jnp.zeros((1, 6, 2, 16))
  ids = jnp.zeros((1, 6), jnp.int32)
  tree = jnp.array([[-1]], jnp.int32)
  with pytest.raises(ValueError, match="multiple of kv heads"):
    pk.packed_tree_attention(jnp.zeros((1, 6, 3, 16)), x, x, ids, tree, tree, scale=1.0)
  with pytest.raises(ValueError, match="branch_ids must be int32"):
    pk.packed_tree_attention(x, x, x, ids[:, :5], tree, tree, scale=1.0)
  with pytest.raises(ValueError, match="max_depth"):
    pk.packed_tree_attention(x, x, x, ids, tree, tree, scale=1.0, max_depth=0)
  jax.jit(functools.partial(pk.packed_tree_attention, scale=1.0))(x, x, x, ids, tree, tree)
