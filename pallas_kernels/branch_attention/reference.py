"""Pure-jnp branch attention: the test oracle and the CPU path.

Gathers every page of each slot's table into a contiguous [S, pages_per_slot * page_size] view, builds
the visibility mask from `lengths` and `block_mask`, and runs dense masked attention in fp32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pallas_kernels.masked_attention import masked_attention


def causal_block_mask(num_slots: int, q_len: int) -> jax.Array:  # [S, Q, Q] bool
  """The default block mask: query i sees block tokens 0..i."""
  causal = jnp.tril(jnp.ones((q_len, q_len), dtype=jnp.bool_))
  return jnp.broadcast_to(causal, (num_slots, q_len, q_len))


def visible_positions(
    lengths: jax.Array,  # [S] int32
    block_mask: jax.Array,  # [S, Q, Q] bool
    context: int,
) -> jax.Array:  # [S, Q, context] bool
  """Position p is visible to query i of slot s iff p < L_s or block_mask[s, i, p - L_s]."""
  s, q_len, _ = block_mask.shape
  pos = jnp.arange(context, dtype=jnp.int32)[None, :]  # [1, C]
  rel = pos - lengths[:, None]  # [S, C]
  in_block = (rel >= 0) & (rel < q_len)
  rel_idx = jnp.broadcast_to(jnp.clip(rel, 0, q_len - 1)[:, None, :], (s, q_len, context))
  block_seen = jnp.take_along_axis(block_mask, rel_idx, axis=2)  # [S, Q, C]
  committed = (rel < 0)[:, None, :]
  return committed | (in_block[:, None, :] & block_seen)


def branch_attention_reference(
    q: jax.Array,  # [S, Q, Hq, D]
    k_pages: jax.Array,  # [P, page_size, Hkv, D]
    v_pages: jax.Array,  # [P, page_size, Hkv, D]
    page_tables: jax.Array,  # [S, pages_per_slot] int32
    lengths: jax.Array,  # [S] int32
    block_mask: jax.Array | None = None,  # [S, Q, Q] bool, None = causal
    *,
    scale: float,
    soft_cap: float | None = None,
) -> jax.Array:  # [S, Q, Hq, D]
  """Branch attention by gathering each slot's pages; see `pallas_kernels.branch_attention`."""
  s, q_len, _, d = q.shape
  num_pages, page_size, hkv, _ = k_pages.shape
  pages_per_slot = page_tables.shape[1]
  context = pages_per_slot * page_size
  if block_mask is None:
    block_mask = causal_block_mask(s, q_len)
  tables = jnp.clip(page_tables, 0, num_pages - 1)
  k = k_pages[tables].reshape(s, context, hkv, d)  # [S, C, Hkv, D]
  v = v_pages[tables].reshape(s, context, hkv, d)
  mask = visible_positions(lengths.astype(jnp.int32), block_mask.astype(jnp.bool_), context)
  return masked_attention(q, k, v, mask, scale=scale, soft_cap=soft_cap)
