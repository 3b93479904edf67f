"""Pallas GPU (Triton) branch attention: one program per (slot, kv head), pages gathered per block.

Each program holds the slot's query rows for one kv head (Q * group rows, padded to a power of 2 >= 16
for tl.dot), loops over compute blocks of `pages_per_block` pages up to the slot's last needed position
L + Q (later blocks are never loaded), gathers the block's pages through the page table, and keeps an
online softmax in fp32 registers. The in-flight block's K/V are already in the slot's pages; the block
mask arrives as bit words per query row (`block_mask_bits`). No split over the context: with 32 slots x
several kv heads the grid already fills the SMs of a GPU at decode shapes.
"""

from __future__ import annotations

import functools

import jax
from jax.experimental import pallas as pl
from jax.experimental.pallas import triton as pltriton
import jax.numpy as jnp

from pallas_kernels.branch_attention import block_mask_bits
from pallas_kernels.branch_attention.block_sizes import GpuBlockSizes, gpu_block_sizes

_NT = (((1,), (1,)), ((), ()))  # a @ b.T
_NN = (((1,), (0,)), ((), ()))  # a @ b


def _kernel(
    q_ref,  # [rows, D]
    words_ref,  # [W, rows] int32
    tables_ref,  # [pages_per_slot_padded] int32
    length_ref,  # [1] int32
    k_ref,  # [P, page_size, D]: this kv head of every page
    v_ref,  # [P, page_size, D]
    o_ref,  # [rows, D]
    *,
    q_len: int,
    pages_per_block: int,
    scale: float,
    soft_cap: float | None,
    precision,
):
  num_pages, page_size, d = k_ref.shape
  rows = q_ref.shape[0]
  block_tokens = pages_per_block * page_size
  length = length_ref[0]
  end = length + q_len
  num_blocks = jax.lax.div(end + block_tokens - 1, block_tokens)
  num_blocks = jnp.minimum(num_blocks, tables_ref.shape[0] // pages_per_block)
  q = q_ref[...]
  words = [words_ref[w, :][:, None] for w in range(words_ref.shape[0])]  # W x [rows, 1]

  def body(block, carry):
    m_prev, l_prev, acc_prev = carry
    pages = tables_ref[pl.ds(block * pages_per_block, pages_per_block)]
    pages = jnp.clip(pages, 0, num_pages - 1)
    k = k_ref[pages].reshape(block_tokens, d)
    v = v_ref[pages].reshape(block_tokens, d)
    pos = block * block_tokens + jax.lax.broadcasted_iota(jnp.int32, (1, block_tokens), 1)
    visible = (pos < length) | block_mask_bits.block_visible(pos - length, words, q_len)
    logits = jax.lax.dot_general(
        q, k, _NT, preferred_element_type=jnp.float32, precision=precision) * scale
    if soft_cap is not None:
      logits = soft_cap * jnp.tanh(logits / soft_cap)
    logits = jnp.where(visible, logits, -jnp.inf)  # [rows, T]
    m_next = jnp.maximum(m_prev, jnp.max(logits, axis=1)[:, None])
    m_safe = jnp.where(m_next == -jnp.inf, 0.0, m_next)
    alpha = jnp.exp(m_prev - m_safe)
    probs = jnp.exp(logits - m_safe)
    l_next = alpha * l_prev + jnp.sum(probs, axis=1)[:, None]
    key_pos = block * block_tokens + jax.lax.broadcasted_iota(jnp.int32, (block_tokens, 1), 0)
    v = jnp.where(key_pos < end, v, jnp.zeros_like(v))  # pages past the end may hold anything
    pv = jax.lax.dot_general(
        probs.astype(v.dtype), v, _NN, preferred_element_type=jnp.float32, precision=precision)
    return m_next, l_next, alpha * acc_prev + pv

  init = (
      jnp.full((rows, 1), -jnp.inf, jnp.float32),
      jnp.zeros((rows, 1), jnp.float32),
      jnp.zeros((rows, d), jnp.float32),
  )
  _, l_fin, acc = jax.lax.fori_loop(0, num_blocks, body, init)
  out = jnp.where(l_fin > 0, acc / jnp.where(l_fin > 0, l_fin, 1.0), 0.0)
  o_ref[...] = out.astype(o_ref.dtype)


def branch_attention_gpu(
    q: jax.Array,  # [S, Q, Hq, D]
    k_pages: jax.Array,  # [P, page_size, Hkv, D]
    v_pages: jax.Array,  # [P, page_size, Hkv, D]
    page_tables: jax.Array,  # [S, pages_per_slot] int32
    lengths: jax.Array,  # [S] int32
    block_mask: jax.Array,  # [S, Q, Q] bool
    *,
    scale: float,
    soft_cap: float | None = None,
    block_sizes: GpuBlockSizes | None = None,
    interpret: bool = False,
) -> jax.Array:  # [S, Q, Hq, D]
  """Runs the Triton kernel (`interpret=True` runs it on CPU through the Pallas interpreter)."""
  s, q_len, hq, d = q.shape
  num_pages, page_size, hkv, _ = k_pages.shape
  pages_per_slot = page_tables.shape[1]
  g = hq // hkv
  r = q_len * g
  if block_sizes is None:
    block_sizes = gpu_block_sizes(q_len=q_len, group=g, page_size=page_size,
                                  pages_per_slot=pages_per_slot)
  ppb, rows = block_sizes.pages_per_block, block_sizes.rows
  q_rows = q.reshape(s, q_len, hkv, g, d).transpose(0, 2, 1, 3, 4).reshape(s, hkv, r, d)
  q_rows = jnp.pad(q_rows, ((0, 0), (0, 0), (0, rows - r), (0, 0)))
  words = jnp.repeat(block_mask_bits.pack_block_mask(block_mask), g, axis=1)  # [S, R, W]
  num_w = words.shape[2]
  words = jnp.pad(jnp.moveaxis(words, 2, 1), ((0, 0), (0, 0), (0, rows - r)))  # [S, W, rows]
  padded = -(-pages_per_slot // ppb) * ppb
  tables = jnp.pad(page_tables.astype(jnp.int32), ((0, 0), (0, padded - pages_per_slot)))
  precision = jax.lax.Precision.HIGHEST if q.dtype == jnp.float32 else None

  kernel = functools.partial(
      _kernel, q_len=q_len, pages_per_block=ppb, scale=float(scale),
      soft_cap=None if soft_cap is None else float(soft_cap), precision=precision)
  out = pl.pallas_call(
      kernel,
      grid=(s, hkv),
      in_specs=[
          pl.BlockSpec((None, None, rows, d), lambda i, h: (i, h, 0, 0)),
          pl.BlockSpec((None, num_w, rows), lambda i, h: (i, 0, 0)),
          pl.BlockSpec((None, padded), lambda i, h: (i, 0)),
          pl.BlockSpec((None, 1), lambda i, h: (i, 0)),
          pl.BlockSpec((num_pages, page_size, None, d), lambda i, h: (0, 0, h, 0)),
          pl.BlockSpec((num_pages, page_size, None, d), lambda i, h: (0, 0, h, 0)),
      ],
      out_specs=pl.BlockSpec((None, None, rows, d), lambda i, h: (i, h, 0, 0)),
      out_shape=jax.ShapeDtypeStruct((s, hkv, rows, d), q.dtype),
      compiler_params=pltriton.CompilerParams(
          num_warps=block_sizes.num_warps, num_stages=block_sizes.num_stages),
      interpret=interpret,
      name="branch_attention_gpu",
  )(q_rows, words, tables, lengths.astype(jnp.int32)[:, None], k_pages, v_pages)
  out = out[:, :, :r]
  return out.reshape(s, hkv, q_len, g, d).transpose(0, 2, 1, 3, 4).reshape(s, q_len, hq, d)
