"""Pallas TPU (Mosaic) branch attention: paged K/V read through scalar-prefetched page tables.

Grid: (slot, kv-head block), both parallel. Each step loops over compute blocks of `pages_per_block`
pages up to the slot's last needed position `L + Q`; pages past it are neither copied nor read. Pages
are DMAed from HBM straight into a double-buffered VMEM scratch (block i+1 is in flight while block i
is computed), and an online softmax in fp32 accumulates over blocks.

Where the in-flight block lives: its K/V were written by the caller into the slot's pages at positions
L..L+Q-1, so they arrive with the ordinary page DMAs; only the mask differs for them (bit words per
query row, see `block_mask_bits`).

Heads: a block of hb kv heads is one lane window [hb * D] of each page (`block_sizes`). When hb > 1
(head_dim < 128) the hb heads share the 128-lane vregs, so instead of slicing lanes the wrapper lays
the queries out block-diagonally, [hb * R, hb * D] with zeros off the head's own lanes: one matmul
then gives every head its own scores, and the wrapper keeps the diagonal blocks of the output.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu
import jax.numpy as jnp

from pallas_kernels.branch_attention import block_mask_bits
from pallas_kernels.branch_attention.block_sizes import TpuBlockSizes, tpu_block_sizes

_NT = (((1,), (1,)), ((), ()))  # a @ b.T
_NN = (((1,), (0,)), ((), ()))  # a @ b


def _kernel(
    tables_ref,  # SMEM [S * pages_per_slot_padded] int32 (scalar prefetch)
    lengths_ref,  # SMEM [S] int32 (scalar prefetch)
    q_ref,  # VMEM [M, HD]; M = hb * R query rows, HD = hb * D lanes
    bits_ref,  # VMEM [W, M, 1] int32
    k_hbm,  # ANY [P, page_size, Hkv * D]
    v_hbm,  # ANY [P, page_size, Hkv * D]
    o_ref,  # VMEM [M, HD]
    k_buf,  # VMEM [2, ppb, page_size, HD]
    v_buf,  # VMEM [2, ppb, page_size, HD]
    sems,  # DMA semaphores [2 (k, v), 2 (buffer)]
    *,
    q_len: int,
    pages_per_slot: int,
    scale: float,
    soft_cap: float | None,
):
  slot, head_block = pl.program_id(0), pl.program_id(1)
  _, ppb, page_size, hd = k_buf.shape
  num_pages = k_hbm.shape[0]
  block_tokens = ppb * page_size
  rows = q_ref.shape[0]
  length = lengths_ref[slot]
  end = length + q_len  # one past the last position any query may see
  num_blocks = jax.lax.div(end + block_tokens - 1, block_tokens)  # lax.div: no sign op in Mosaic
  num_blocks = jnp.minimum(num_blocks, pages_per_slot // ppb)  # never index past the table
  # One head block: the whole row (static); several: a lane-aligned window of the row.
  lane_start = 0 if k_hbm.shape[2] == hd else pl.multiple_of(head_block * hd, 128)

  def page_copies(block, buf):
    copies = []
    for j in range(ppb):
      index = block * ppb + j
      page = jnp.clip(tables_ref[slot * pages_per_slot + index], 0, num_pages - 1)
      needed = index * page_size < end
      src_k = k_hbm.at[page, :, pl.ds(lane_start, hd)]
      src_v = v_hbm.at[page, :, pl.ds(lane_start, hd)]
      copies.append((
          needed,
          pltpu.make_async_copy(src_k, k_buf.at[buf, j], sems.at[0, buf]),
          pltpu.make_async_copy(src_v, v_buf.at[buf, j], sems.at[1, buf]),
      ))
    return copies

  def start(block, buf):
    for needed, copy_k, copy_v in page_copies(block, buf):
      @pl.when(needed)
      def _():
        copy_k.start()
        copy_v.start()

  def wait(block, buf):
    for needed, copy_k, copy_v in page_copies(block, buf):
      @pl.when(needed)
      def _():
        copy_k.wait()
        copy_v.wait()

  start(0, 0)
  q = q_ref[...]  # [M, HD]
  words = [bits_ref[w] for w in range(bits_ref.shape[0])]  # W x [M, 1]

  def body(block, carry):
    m_prev, l_prev, acc_prev = carry
    buf = jax.lax.rem(block, 2)

    @pl.when(block + 1 < num_blocks)
    def _():
      start(block + 1, 1 - buf)

    wait(block, buf)
    k = k_buf[buf].reshape(block_tokens, hd)
    v = v_buf[buf].reshape(block_tokens, hd)
    pos = block * block_tokens + jax.lax.broadcasted_iota(jnp.int32, (1, block_tokens), 1)
    visible = (pos < length) | block_mask_bits.block_visible(pos - length, words, q_len)
    logits = jax.lax.dot_general(q, k, _NT, preferred_element_type=jnp.float32) * scale
    if soft_cap is not None:
      logits = soft_cap * jnp.tanh(logits / soft_cap)
    logits = jnp.where(visible, logits, -jnp.inf)  # [M, T]
    m_next = jnp.maximum(m_prev, jnp.max(logits, axis=1, keepdims=True))
    m_safe = jnp.where(m_next == -jnp.inf, 0.0, m_next)
    alpha = jnp.exp(m_prev - m_safe)
    probs = jnp.exp(logits - m_safe)
    l_next = alpha * l_prev + jnp.sum(probs, axis=1, keepdims=True)
    # Rows past `end` hold stale or never-copied VMEM: zero them so 0 * NaN cannot appear.
    key_pos = block * block_tokens + jax.lax.broadcasted_iota(jnp.int32, (block_tokens, 1), 0)
    v = jnp.where(key_pos < end, v, jnp.zeros_like(v))
    pv = jax.lax.dot_general(probs.astype(v.dtype), v, _NN, preferred_element_type=jnp.float32)
    return m_next, l_next, alpha * acc_prev + pv

  init = (
      jnp.full((rows, 1), -jnp.inf, jnp.float32),
      jnp.zeros((rows, 1), jnp.float32),
      jnp.zeros((rows, hd), jnp.float32),
  )
  _, l_fin, acc = jax.lax.fori_loop(0, num_blocks, body, init)
  out = jnp.where(l_fin > 0, acc / jnp.where(l_fin > 0, l_fin, 1.0), 0.0)
  o_ref[...] = out.astype(o_ref.dtype)


def _block_diagonal_queries(q: jax.Array, hb: int) -> jax.Array:
  """[S, Hkv, R, D] -> [S, Hkv / hb, hb * R, hb * D], head h of a block on lanes h*D..(h+1)*D."""
  s, hkv, r, d = q.shape
  blocks = q.reshape(s, hkv // hb, hb, r, d)
  expanded = jnp.einsum("snhrd,hk->snhrkd", blocks, jnp.eye(hb, dtype=q.dtype))
  return expanded.reshape(s, hkv // hb, hb * r, hb * d)


def _diagonal_outputs(o: jax.Array, hb: int, d: int) -> jax.Array:
  """Inverse of `_block_diagonal_queries` on outputs: [S, nb, hb * R, hb * D] -> [S, Hkv, R, D]."""
  s, nb, m, _ = o.shape
  r = m // hb
  o = o.reshape(s, nb, hb, r, hb, d)
  diag = jnp.diagonal(o, axis1=2, axis2=4)  # [S, nb, R, D, hb]
  return jnp.moveaxis(diag, -1, 2).reshape(s, nb * hb, r, d)


def branch_attention_tpu(
    q: jax.Array,  # [S, Q, Hq, D]
    k_pages: jax.Array,  # [P, page_size, Hkv, D]
    v_pages: jax.Array,  # [P, page_size, Hkv, D]
    page_tables: jax.Array,  # [S, pages_per_slot] int32
    lengths: jax.Array,  # [S] int32
    block_mask: jax.Array,  # [S, Q, Q] bool
    *,
    scale: float,
    soft_cap: float | None = None,
    block_sizes: TpuBlockSizes | None = None,
    interpret: Any = False,
) -> jax.Array:  # [S, Q, Hq, D]
  """Runs the Mosaic kernel (or interprets it when `interpret` is a `pltpu.InterpretParams`)."""
  s, q_len, hq, d = q.shape
  num_pages, page_size, hkv, _ = k_pages.shape
  pages_per_slot = page_tables.shape[1]
  g = hq // hkv
  r = q_len * g
  if block_sizes is None:
    block_sizes = tpu_block_sizes(
        num_kv_heads=hkv, head_dim=d, page_size=page_size, pages_per_slot=pages_per_slot,
        itemsize=k_pages.dtype.itemsize)
  hb, ppb = block_sizes.heads_per_block, block_sizes.pages_per_block
  nb = hkv // hb
  m, hd = hb * r, hb * d

  # Rows r = i * G + g of kv head h; then block-diagonal over the hb heads of a block.
  q_rows = q.reshape(s, q_len, hkv, g, d).transpose(0, 2, 1, 3, 4).reshape(s, hkv, r, d)
  q_blocks = q_rows.reshape(s, nb, m, hd) if hb == 1 else _block_diagonal_queries(q_rows, hb)
  words = block_mask_bits.pack_block_mask(block_mask)  # [S, Q, W]
  words = jnp.tile(jnp.repeat(words, g, axis=1), (1, hb, 1))  # [S, M, W]
  words = jnp.moveaxis(words, 2, 1)[..., None]  # [S, W, M, 1]
  num_w = words.shape[1]
  padded = -(-pages_per_slot // ppb) * ppb
  tables = jnp.pad(page_tables.astype(jnp.int32), ((0, 0), (0, padded - pages_per_slot)))
  k_flat = k_pages.reshape(num_pages, page_size, hkv * d)
  v_flat = v_pages.reshape(num_pages, page_size, hkv * d)

  kernel = functools.partial(
      _kernel, q_len=q_len, pages_per_slot=padded, scale=float(scale),
      soft_cap=None if soft_cap is None else float(soft_cap))
  grid_spec = pltpu.PrefetchScalarGridSpec(
      num_scalar_prefetch=2,
      grid=(s, nb),
      in_specs=[
          pl.BlockSpec((None, None, m, hd), lambda i, h, *_: (i, h, 0, 0)),
          pl.BlockSpec((None, num_w, m, 1), lambda i, h, *_: (i, 0, 0, 0)),
          pl.BlockSpec(memory_space=pl.ANY),
          pl.BlockSpec(memory_space=pl.ANY),
      ],
      out_specs=pl.BlockSpec((None, None, m, hd), lambda i, h, *_: (i, h, 0, 0)),
      scratch_shapes=[
          pltpu.VMEM((2, ppb, page_size, hd), k_pages.dtype),
          pltpu.VMEM((2, ppb, page_size, hd), v_pages.dtype),
          pltpu.SemaphoreType.DMA((2, 2)),
      ],
  )
  out = pl.pallas_call(
      kernel,
      grid_spec=grid_spec,
      out_shape=jax.ShapeDtypeStruct((s, nb, m, hd), q.dtype),
      compiler_params=pltpu.CompilerParams(dimension_semantics=("parallel", "parallel")),
      interpret=interpret,
      name="branch_attention_tpu",
  )(tables.reshape(-1), lengths.astype(jnp.int32), q_blocks, words, k_flat, v_flat)
  out = out.reshape(s, hkv, r, d) if hb == 1 else _diagonal_outputs(out, hb, d)
  return out.reshape(s, hkv, q_len, g, d).transpose(0, 2, 1, 3, 4).reshape(s, q_len, hq, d)
