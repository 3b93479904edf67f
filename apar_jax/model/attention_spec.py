"""Attention specifications: how one attention layer reads and writes K/V.

The model computes q/k/v and hands them to a spec; the spec decides what the queries see. That is how
prefill, one-token decode, chunked blocks, tree verification and packed-tree training share one forward:
  * `CausalSpec`      - no cache; causal self-attention inside the block (training, references).
  * `DenseCacheSpec`  - contiguous per-layer cache [B, max_len, Hkv, D]; the block is written at each
                        row's committed length and attends to everything before it plus itself causally.
  * `PagedSpec`       - paged per-layer pool shared by branch slots (the engine); see
                        `pallas_kernels.branch_attention` for what each query sees.
Each spec is a pytree, so it can be built inside jit and carried by a while_loop.
"""

from typing import Any, Optional

import flax.struct
import jax
import jax.numpy as jnp

NEG_INF = -1e30


def dense_attention(q: jax.Array, k: jax.Array, v: jax.Array, mask: jax.Array, scale: float,
                    soft_cap: Optional[float] = None) -> jax.Array:
  """Masked softmax attention with grouped-query heads and fp32 accumulation.

  q [B, T, Hq, D], k/v [B, S, Hkv, D], mask [B, T, S] bool -> [B, T, Hq, D] in q's dtype.
  Rows whose mask is all False return zeros.
  """
  b, t, hq, d = q.shape
  hkv = k.shape[2]
  qg = q.reshape(b, t, hkv, hq // hkv, d)  # [B, T, Hkv, G, D]
  logits = jnp.einsum('btkgd,bskd->bkgts', qg, k, preferred_element_type=jnp.float32) * scale
  if soft_cap is not None:
    logits = soft_cap * jnp.tanh(logits / soft_cap)
  logits = jnp.where(mask[:, None, None], logits, NEG_INF)  # [B, Hkv, G, T, S]
  probs = jax.nn.softmax(logits, axis=-1)
  probs = jnp.where(mask[:, None, None].any(-1, keepdims=True), probs, 0.0)
  out = jnp.einsum('bkgts,bskd->btkgd', probs.astype(v.dtype), v, preferred_element_type=jnp.float32)
  return out.reshape(b, t, hq, d).astype(q.dtype)


@flax.struct.dataclass
class CausalSpec:
  """Causal attention within the block; `valid [B, T]` marks real (non-padding) tokens."""
  valid: Optional[jax.Array] = None
  soft_cap: Optional[float] = flax.struct.field(pytree_node=False, default=None)

  def attend(self, q, k, v, cache: Any, scale: float):
    t = q.shape[1]
    mask = jnp.tril(jnp.ones((t, t), bool))[None]  # [1, T, T]
    if self.valid is not None:
      mask = mask & self.valid[:, None, :]
    mask = jnp.broadcast_to(mask, (q.shape[0], t, t))
    return dense_attention(q, k, v, mask, scale, self.soft_cap), cache


@flax.struct.dataclass
class DenseCache:
  """One layer's contiguous cache."""
  k: jax.Array  # [B, max_len, Hkv, D]
  v: jax.Array  # [B, max_len, Hkv, D]

  @classmethod
  def zeros(cls, batch: int, max_len: int, n_kv_heads: int, head_dim: int, dtype) -> 'DenseCache':
    shape = (batch, max_len, n_kv_heads, head_dim)
    return cls(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


@flax.struct.dataclass
class DenseCacheSpec:
  """Block written at `lengths[b]`; query t sees cache positions < lengths[b] + t + 1."""
  lengths: jax.Array  # [B] int32, committed tokens per row
  soft_cap: Optional[float] = flax.struct.field(pytree_node=False, default=None)

  def attend(self, q, k, v, cache: DenseCache, scale: float):
    t = q.shape[1]
    write = jax.vmap(lambda c, x, start: jax.lax.dynamic_update_slice_in_dim(c, x, start, axis=0))
    new_cache = DenseCache(write(cache.k, k.astype(cache.k.dtype), self.lengths),
                           write(cache.v, v.astype(cache.v.dtype), self.lengths))
    max_len = cache.k.shape[1]
    limit = self.lengths[:, None] + jnp.arange(t)[None, :] + 1  # [B, T]
    mask = jnp.arange(max_len)[None, None, :] < limit[:, :, None]  # [B, T, max_len]
    return dense_attention(q, new_cache.k, new_cache.v, mask, scale, self.soft_cap), new_cache


@flax.struct.dataclass
class PagedCache:
  """One layer's page pool shared by every slot."""
  k_pages: jax.Array  # [P, page_size, Hkv, D]
  v_pages: jax.Array  # [P, page_size, Hkv, D]

  @classmethod
  def zeros(cls, num_pages: int, page_size: int, n_kv_heads: int, head_dim: int,
            dtype) -> 'PagedCache':
    shape = (num_pages, page_size, n_kv_heads, head_dim)
    return cls(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))


@flax.struct.dataclass
class PagedSpec:
  """Branch-local attention over a paged pool (see `pallas_kernels.branch_attention`).

  The block's K/V are first written at positions lengths[s] .. lengths[s] + Q - 1 of each slot (through
  its page table); slots with `write [S] == False` write nothing (idle slots).
  """
  page_tables: jax.Array  # [S, pages_per_slot] int32
  lengths: jax.Array  # [S] int32
  block_mask: Optional[jax.Array] = None  # [S, Q, Q] bool; None = causal
  write: Optional[jax.Array] = None  # [S] bool
  impl: str = flax.struct.field(pytree_node=False, default='auto')
  soft_cap: Optional[float] = flax.struct.field(pytree_node=False, default=None)

  def attend(self, q, k, v, cache: PagedCache, scale: float):
    import pallas_kernels  # local import: the model does not need kernels for the other specs
    s, qlen = q.shape[:2]
    page_size = cache.k_pages.shape[1]
    pos = self.lengths[:, None] + jnp.arange(qlen)[None, :]  # [S, Q]
    page_idx = jnp.take_along_axis(self.page_tables, pos // page_size, axis=1)  # [S, Q]
    if self.write is not None:  # idle slots scatter out of bounds, which is dropped
      page_idx = jnp.where(self.write[:, None], page_idx, cache.k_pages.shape[0])
    offset = pos % page_size
    new_cache = PagedCache(
        cache.k_pages.at[page_idx, offset].set(k.astype(cache.k_pages.dtype), mode='drop'),
        cache.v_pages.at[page_idx, offset].set(v.astype(cache.v_pages.dtype), mode='drop'))
    out = pallas_kernels.branch_attention(
        q, new_cache.k_pages, new_cache.v_pages, self.page_tables, self.lengths, self.block_mask,
        scale=scale, soft_cap=self.soft_cap, impl=self.impl)
    return out, new_cache
