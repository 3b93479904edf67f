"""Pallas GPU (Triton) block-sparse packed-tree attention.

One program per (batch, query head, query block); it loops over that query block's visible key blocks
only (`block_sparsity`: a dynamic trip count read from the list), slicing K/V of the grouped kv head
straight from the [B, T, Hkv, D] input. Flash-style online softmax in fp32 registers.
"""

from __future__ import annotations

import functools

import jax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton
import jax.numpy as jnp

from pallas_kernels.packed_tree.block_sizes import TreeBlockSizes, gpu_block_sizes
from pallas_kernels.packed_tree.layout import prepare_tree_inputs
from pallas_kernels.packed_tree.metadata import tree_visible

_NT = (((1,), (1,)), ((), ()))
_NN = (((1,), (0,)), ((), ()))


def _kernel(
    q_ref,  # [bq, D]
    ancestor_ref,  # [Dm, bq] int32
    bound_ref,  # [Dm, bq] int32
    kv_list_ref,  # [nk] int32
    kv_count_ref,  # [1] int32
    k_ref,  # [Tp, D] (this kv head)
    v_ref,  # [Tp, D]
    key_info_ref,  # [2, Tp] int32: depth, branch
    o_ref,  # [bq, D]
    *,
    block_k: int,
    scale: float,
    soft_cap: float | None,
    precision,
):
  bq, d = q_ref.shape
  depth_levels = ancestor_ref.shape[0]
  q = q_ref[...]
  ancestor = [ancestor_ref[lvl, :][:, None] for lvl in range(depth_levels)]
  bound = [bound_ref[lvl, :][:, None] for lvl in range(depth_levels)]

  def body(step, carry):
    m_prev, l_prev, acc_prev = carry
    start = kv_list_ref[step] * block_k
    keys = pl.ds(start, block_k)
    k = k_ref[keys, :]
    v = v_ref[keys, :]
    key_pos = start + jax.lax.broadcasted_iota(jnp.int32, (1, block_k), 1)
    key_depth = key_info_ref[0, keys][None, :]
    key_branch = key_info_ref[1, keys][None, :]
    visible = tree_visible(ancestor, bound, key_depth, key_branch, key_pos)
    logits = jax.lax.dot_general(
        q, k, _NT, preferred_element_type=jnp.float32, precision=precision) * scale
    if soft_cap is not None:
      logits = soft_cap * jnp.tanh(logits / soft_cap)
    logits = jnp.where(visible, logits, -jnp.inf)
    m_next = jnp.maximum(m_prev, jnp.max(logits, axis=1)[:, None])
    m_safe = jnp.where(m_next == -jnp.inf, 0.0, m_next)
    alpha = jnp.exp(m_prev - m_safe)
    probs = jnp.exp(logits - m_safe)
    l_next = alpha * l_prev + jnp.sum(probs, axis=1)[:, None]
    pv = jax.lax.dot_general(
        probs.astype(v.dtype), v, _NN, preferred_element_type=jnp.float32, precision=precision)
    return m_next, l_next, alpha * acc_prev + pv

  init = (
      jnp.full((bq, 1), -jnp.inf, jnp.float32),
      jnp.zeros((bq, 1), jnp.float32),
      jnp.zeros((bq, d), jnp.float32),
  )
  _, l_fin, acc = jax.lax.fori_loop(0, kv_count_ref[0], body, init)
  out = jnp.where(l_fin > 0, acc / jnp.where(l_fin > 0, l_fin, 1.0), 0.0)
  o_ref[...] = out.astype(o_ref.dtype)


def packed_tree_attention_gpu(
    q: jax.Array,  # [B, T, Hq, D]
    k: jax.Array,  # [B, T, Hkv, D]
    v: jax.Array,  # [B, T, Hkv, D]
    branch_ids: jax.Array,  # [B, T] int32
    branch_parent: jax.Array,  # [B, NB] int32
    fork_index: jax.Array,  # [B, NB] int32
    *,
    scale: float,
    soft_cap: float | None = None,
    max_depth: int | None = None,
    block_sizes: TreeBlockSizes | None = None,
    interpret: bool = False,
) -> jax.Array:  # [B, T, Hq, D]
  """Runs the Triton kernel (`interpret=True` runs it on CPU through the Pallas interpreter)."""
  bsz, t, hq, d = q.shape
  hkv = k.shape[2]
  g = hq // hkv
  if block_sizes is None:
    block_sizes = gpu_block_sizes(seq_len=t)
  bq, bk = block_sizes.block_q, block_sizes.block_k
  x = prepare_tree_inputs(
      q, k, v, branch_ids, branch_parent, fork_index, max_depth=max_depth, block_q=bq, block_k=bk)
  tp, nq, nk, dm = x.padded_len, x.num_q_blocks, x.num_k_blocks, x.max_depth
  ancestor = jnp.moveaxis(x.meta.ancestor, 2, 1)  # [B, Dm, Tp]
  bound = jnp.moveaxis(x.meta.bound, 2, 1)
  key_info = jnp.stack([x.meta.key_depth, x.meta.key_branch], axis=1)  # [B, 2, Tp]
  precision = jax.lax.Precision.HIGHEST if q.dtype == jnp.float32 else None

  kernel = functools.partial(
      _kernel, block_k=bk, scale=float(scale),
      soft_cap=None if soft_cap is None else float(soft_cap), precision=precision)
  out = pl.pallas_call(
      kernel,
      grid=(bsz, hq, nq),
      in_specs=[
          pl.BlockSpec((None, bq, None, d), lambda b, h, qi: (b, qi, h, 0)),
          pl.BlockSpec((None, dm, bq), lambda b, h, qi: (b, 0, qi)),
          pl.BlockSpec((None, dm, bq), lambda b, h, qi: (b, 0, qi)),
          pl.BlockSpec((None, None, nk), lambda b, h, qi: (b, qi, 0)),
          pl.BlockSpec((None, None, 1), lambda b, h, qi: (b, qi, 0)),
          pl.BlockSpec((None, tp, None, d), lambda b, h, qi: (b, 0, h // g, 0)),
          pl.BlockSpec((None, tp, None, d), lambda b, h, qi: (b, 0, h // g, 0)),
          pl.BlockSpec((None, 2, tp), lambda b, h, qi: (b, 0, 0)),
      ],
      out_specs=pl.BlockSpec((None, bq, None, d), lambda b, h, qi: (b, qi, h, 0)),
      out_shape=jax.ShapeDtypeStruct((bsz, tp, hq, d), q.dtype),
      compiler_params=pltriton.CompilerParams(
          num_warps=block_sizes.num_warps, num_stages=block_sizes.num_stages),
      interpret=interpret,
      name="packed_tree_attention_gpu",
  )(x.q, ancestor, bound, x.lists.kv_list, x.lists.kv_count[..., None], x.k, x.v, key_info)
  return out[:, :t]
