"""`branch_attention`: validates, then runs the reference or a Pallas kernel (see `resolve_impl`)."""

from __future__ import annotations

import functools

import jax

from pallas_kernels.branch_attention import validate
from pallas_kernels.branch_attention.gpu_kernel import branch_attention_gpu
from pallas_kernels.branch_attention.reference import branch_attention_reference, causal_block_mask
from pallas_kernels.branch_attention.tpu_kernel import branch_attention_tpu
from pallas_kernels.impl import resolve_impl
from pallas_kernels.interpret_params import tpu_interpret_params


def branch_attention(
    q: jax.Array,  # [S, Q, Hq, D]
    k_pages: jax.Array,  # [P, page_size, Hkv, D]
    v_pages: jax.Array,  # [P, page_size, Hkv, D]
    page_tables: jax.Array,  # [S, pages_per_slot] int32
    lengths: jax.Array,  # [S] int32: committed tokens of each slot
    block_mask: jax.Array | None = None,  # [S, Q, Q] bool; None = causal within the block
    *,
    scale: float,
    soft_cap: float | None = None,
    impl: str = "auto",
) -> jax.Array:  # [S, Q, Hq, D] in q's dtype
  """Attention of each slot's query block over its committed tokens and its in-flight block.

  The block's own K/V must already be written in the slot's pages at positions
  lengths[s] .. lengths[s] + Q - 1. Query i of slot s sees positions < lengths[s] and block position
  lengths[s] + j iff block_mask[s, i, j]. Grouped-query heads (Hq a multiple of Hkv), logits
  `scale * q.k`, optionally soft-capped as `soft_cap * tanh(logits / soft_cap)`, fp32 accumulation.
  A query that sees nothing returns zeros. Page-table entries past a slot's used pages are ignored
  (clamped into the pool, never allowed to affect the result). jit- and while_loop-safe.

  impl: 'auto' | 'reference' | 'pallas' | 'pallas_interpret' (see `pallas_kernels.resolve_impl`).
  """
  validate.check_static(q, k_pages, v_pages, page_tables, lengths, block_mask,
                        scale=scale, soft_cap=soft_cap)
  if validate.is_concrete(page_tables, lengths):
    validate.check_values(page_tables, lengths, q_len=q.shape[1], page_size=k_pages.shape[1],
                          num_pages=k_pages.shape[0])
  which = resolve_impl(impl)
  if which == "pallas_gpu":
    validate.check_gpu_kernel(q, k_pages)
  elif which != "reference":
    validate.check_tpu_kernel(q, k_pages)
  return _run(q, k_pages, v_pages, page_tables, lengths, block_mask, scale=float(scale),
              soft_cap=None if soft_cap is None else float(soft_cap), which=which)


@functools.partial(jax.jit, static_argnames=("scale", "soft_cap", "which"))
def _run(q, k_pages, v_pages, page_tables, lengths, block_mask, *, scale, soft_cap, which):
  """Jitted so that eager callers compile once per shape (a no-op under an outer jit)."""
  if block_mask is None:
    block_mask = causal_block_mask(q.shape[0], q.shape[1])
  args = (q, k_pages, v_pages, page_tables, lengths, block_mask)
  if which == "reference":
    return branch_attention_reference(*args, scale=scale, soft_cap=soft_cap)
  if which == "pallas_gpu":
    return branch_attention_gpu(*args, scale=scale, soft_cap=soft_cap)
  interpret = tpu_interpret_params() if which == "pallas_interpret" else False
  return branch_attention_tpu(*args, scale=scale, soft_cap=soft_cap, interpret=interpret)
