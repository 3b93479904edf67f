"""Pallas TPU (Mosaic) block-sparse packed-tree attention.

Grid: (batch, kv head, query block, step). Step t visits the t-th visible key block of the query block
(`block_sparsity`), read through scalar-prefetched lists in the BlockSpec index maps: padding steps
repeat the last block index, so the pipeline copies nothing for them and the body is skipped. Query
rows fold the G grouped heads of one kv head (row = token * G + g), so each K/V block is read once per
kv head. Flash-style online softmax in fp32 VMEM scratch; the output block is written at the last step.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
import jax.numpy as jnp

from pallas_kernels.packed_tree.block_sizes import TreeBlockSizes, tpu_block_sizes
from pallas_kernels.packed_tree.layout import TreeInputs, prepare_tree_inputs
from pallas_kernels.packed_tree.metadata import tree_visible

_NT = (((1,), (1,)), ((), ()))
_NN = (((1,), (0,)), ((), ()))


def _kernel(
    kv_list_ref,  # SMEM [B * nq * nk] int32 (scalar prefetch)
    kv_count_ref,  # SMEM [B * nq] int32 (scalar prefetch)
    q_ref,  # [R, D], R = block_q * G
    ancestor_ref,  # [Dm, R, 1] int32
    bound_ref,  # [Dm, R, 1] int32
    k_ref,  # [bk, D]
    v_ref,  # [bk, D]
    key_info_ref,  # [2, bk] int32: depth, branch
    o_ref,  # [R, D]
    m_scr,  # [R, 1] f32
    l_scr,  # [R, 1] f32
    acc_scr,  # [R, D] f32
    *,
    num_q_blocks: int,
    num_k_blocks: int,
    scale: float,
    soft_cap: float | None,
):
  b, qi, step = pl.program_id(0), pl.program_id(2), pl.program_id(3)
  block_k = k_ref.shape[0]
  row = b * num_q_blocks + qi
  count = kv_count_ref[row]

  @pl.when(step == 0)
  def _():
    m_scr[...] = jnp.full_like(m_scr, -jnp.inf)
    l_scr[...] = jnp.zeros_like(l_scr)
    acc_scr[...] = jnp.zeros_like(acc_scr)

  @pl.when(step < count)
  def _():
    kb = kv_list_ref[row * num_k_blocks + step]
    key_pos = kb * block_k + jax.lax.broadcasted_iota(jnp.int32, (1, block_k), 1)
    depth_levels = ancestor_ref.shape[0]
    visible = _tree_visible(ancestor_ref, bound_ref, key_info_ref, key_pos, depth_levels)
    logits = jax.lax.dot_general(
        q_ref[...], k_ref[...], _NT, preferred_element_type=jnp.float32) * scale
    if soft_cap is not None:
      logits = soft_cap * jnp.tanh(logits / soft_cap)
    logits = jnp.where(visible, logits, -jnp.inf)
    m_prev = m_scr[...]
    m_next = jnp.maximum(m_prev, jnp.max(logits, axis=1, keepdims=True))
    m_safe = jnp.where(m_next == -jnp.inf, 0.0, m_next)
    alpha = jnp.exp(m_prev - m_safe)
    probs = jnp.exp(logits - m_safe)
    l_scr[...] = alpha * l_scr[...] + jnp.sum(probs, axis=1, keepdims=True)
    v = v_ref[...]
    pv = jax.lax.dot_general(probs.astype(v.dtype), v, _NN, preferred_element_type=jnp.float32)
    acc_scr[...] = alpha * acc_scr[...] + pv
    m_scr[...] = m_next

  @pl.when(step == num_k_blocks - 1)
  def _():
    l_fin = l_scr[...]
    out = jnp.where(l_fin > 0, acc_scr[...] / jnp.where(l_fin > 0, l_fin, 1.0), 0.0)
    o_ref[...] = out.astype(o_ref.dtype)


def _tree_visible(ancestor_ref, bound_ref, key_info_ref, key_pos, depth_levels):
  return tree_visible(
      [ancestor_ref[d] for d in range(depth_levels)], [bound_ref[d] for d in range(depth_levels)],
      key_info_ref[0:1, :], key_info_ref[1:2, :], key_pos)


def packed_tree_attention_tpu(
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
    interpret: Any = False,
) -> jax.Array:  # [B, T, Hq, D]
  """Runs the Mosaic kernel (or interprets it when `interpret` is a `pltpu.InterpretParams`)."""
  bsz, t, hq, d = q.shape
  hkv = k.shape[2]
  g = hq // hkv
  if block_sizes is None:
    block_sizes = tpu_block_sizes(seq_len=t, group=g)
  bq, bk = block_sizes.block_q, block_sizes.block_k
  x: TreeInputs = prepare_tree_inputs(
      q, k, v, branch_ids, branch_parent, fork_index, max_depth=max_depth, block_q=bq, block_k=bk)
  tp, nq, nk, dm = x.padded_len, x.num_q_blocks, x.num_k_blocks, x.max_depth
  r = bq * g

  q_rows = x.q.reshape(bsz, tp, hkv, g, d).transpose(0, 2, 1, 3, 4).reshape(bsz, hkv, tp * g, d)
  k_heads = x.k.transpose(0, 2, 1, 3)  # [B, Hkv, Tp, D]
  v_heads = x.v.transpose(0, 2, 1, 3)
  ancestor = jnp.moveaxis(jnp.repeat(x.meta.ancestor, g, axis=1), 2, 1)[..., None]  # [B, Dm, Tp*G, 1]
  bound = jnp.moveaxis(jnp.repeat(x.meta.bound, g, axis=1), 2, 1)[..., None]
  key_info = jnp.stack([x.meta.key_depth, x.meta.key_branch], axis=1)  # [B, 2, Tp]
  key_info = key_info.reshape(bsz, 2, nk, bk).transpose(0, 2, 1, 3)  # [B, nk, 2, bk]

  def kv_block(b, qi, step, kv_list):
    return kv_list[(b * nq + qi) * nk + step]

  kernel = functools.partial(
      _kernel, num_q_blocks=nq, num_k_blocks=nk, scale=float(scale),
      soft_cap=None if soft_cap is None else float(soft_cap))
  grid_spec = pltpu.PrefetchScalarGridSpec(
      num_scalar_prefetch=2,
      grid=(bsz, hkv, nq, nk),
      in_specs=[
          pl.BlockSpec((None, None, r, d), lambda b, h, qi, s, kl, kc: (b, h, qi, 0)),
          pl.BlockSpec((None, dm, r, 1), lambda b, h, qi, s, kl, kc: (b, 0, qi, 0)),
          pl.BlockSpec((None, dm, r, 1), lambda b, h, qi, s, kl, kc: (b, 0, qi, 0)),
          pl.BlockSpec((None, None, bk, d),
                       lambda b, h, qi, s, kl, kc: (b, h, kv_block(b, qi, s, kl), 0)),
          pl.BlockSpec((None, None, bk, d),
                       lambda b, h, qi, s, kl, kc: (b, h, kv_block(b, qi, s, kl), 0)),
          pl.BlockSpec((None, None, 2, bk),
                       lambda b, h, qi, s, kl, kc: (b, kv_block(b, qi, s, kl), 0, 0)),
      ],
      out_specs=pl.BlockSpec((None, None, r, d), lambda b, h, qi, s, kl, kc: (b, h, qi, 0)),
      scratch_shapes=[
          pltpu.VMEM((r, 1), jnp.float32),
          pltpu.VMEM((r, 1), jnp.float32),
          pltpu.VMEM((r, d), jnp.float32),
      ],
  )
  out = pl.pallas_call(
      kernel,
      grid_spec=grid_spec,
      out_shape=jax.ShapeDtypeStruct((bsz, hkv, tp * g, d), q.dtype),
      compiler_params=pltpu.CompilerParams(
          dimension_semantics=("parallel", "parallel", "parallel", "arbitrary")),
      interpret=interpret,
      name="packed_tree_attention_tpu",
  )(x.lists.kv_list.reshape(-1), x.lists.kv_count.reshape(-1), q_rows, ancestor, bound,
    k_heads, v_heads, key_info)
  out = out.reshape(bsz, hkv, tp, g, d).transpose(0, 2, 1, 3, 4).reshape(bsz, tp, hq, d)
  return out[:, :t]
