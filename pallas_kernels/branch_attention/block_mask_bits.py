"""The in-flight block's mask as bit words per query row, and the in-kernel test that reads them.

Kernels do not gather from a [Q, Q] mask. Each query row carries `ceil(Q / 32)` int32 words whose bit j
says "this row sees block token j"; a key at position p is a block token j = p - L. Testing a bit is a
shift and an and on [rows, keys] vectors, which both Mosaic and Triton lower without gathers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BITS_PER_WORD = 32


def num_words(q_len: int) -> int:
  return -(-q_len // BITS_PER_WORD)


def pack_block_mask(block_mask: jax.Array) -> jax.Array:  # [S, Q, W] int32
  """Packs a [S, Q, Q] bool mask into W = ceil(Q / 32) int32 words per query (bit j = token j)."""
  s, q_len, _ = block_mask.shape
  w = num_words(q_len)
  padded = jnp.pad(block_mask.astype(jnp.uint32), ((0, 0), (0, 0), (0, w * BITS_PER_WORD - q_len)))
  padded = padded.reshape(s, q_len, w, BITS_PER_WORD)
  shifts = jnp.arange(BITS_PER_WORD, dtype=jnp.uint32)
  words = jnp.sum(padded << shifts, axis=-1, dtype=jnp.uint32)  # bits are disjoint: sum == or
  return jax.lax.bitcast_convert_type(words, jnp.int32)


def block_visible(
    rel: jax.Array,  # [1, T] int32: key position minus the slot's committed length
    words: list[jax.Array],  # W arrays [R, 1] int32: the row's mask words
    q_len: int,
) -> jax.Array:  # [R, T] bool
  """True where the key is block token j = rel (0 <= j < Q) and the row's bit j is set.

  Written with elementwise ops only, so it runs inside Mosaic (TPU) and Triton (GPU) kernels.
  """
  visible = None
  for w, word in enumerate(words):
    j = rel - w * BITS_PER_WORD
    in_word = (j >= 0) & (j < min(BITS_PER_WORD, q_len - w * BITS_PER_WORD))
    shift = jnp.clip(j, 0, BITS_PER_WORD - 1)
    bit = jnp.right_shift(word, shift) & 1  # [R, T]
    hit = in_word & (bit == 1)
    visible = hit if visible is None else visible | hit
  return visible
