"""Next-token selection: greedy, or temperature / top-k / top-p sampling with per-row settings.

All settings are arrays (one value per row), so one compiled function serves mixed requests; a row with
temperature 0 is greedy. Filtering happens on fp32 logits; banned ids get -inf before anything else.
"""

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

NEG_INF = -jnp.inf


def ban_tokens(logits: jax.Array, banned_ids: Sequence[int]) -> jax.Array:
  """Sets the logits of `banned_ids` to -inf. logits [..., V]."""
  if not banned_ids:
    return logits
  return logits.at[..., jnp.asarray(tuple(banned_ids), jnp.int32)].set(NEG_INF)


def filter_top_k_top_p(logits: jax.Array, top_k: jax.Array, top_p: jax.Array) -> jax.Array:
  """Masks logits [B, V] outside each row's top-k (0 = off) and top-p nucleus (1.0 = off)."""
  vocab = logits.shape[-1]
  sorted_logits = jnp.sort(logits, axis=-1)[:, ::-1]  # [B, V] descending
  k = jnp.where(top_k > 0, jnp.minimum(top_k, vocab), vocab)  # [B]
  kth = jnp.take_along_axis(sorted_logits, (k - 1)[:, None], axis=-1)  # [B, 1]
  probs = jax.nn.softmax(sorted_logits, axis=-1)
  # Keep the smallest prefix whose mass reaches top_p: a token is kept if the mass before it < top_p.
  mass_before = jnp.cumsum(probs, axis=-1) - probs  # [B, V]
  keep_sorted = mass_before < top_p[:, None]
  n_keep = jnp.maximum(jnp.sum(keep_sorted, axis=-1), 1)  # [B]
  pth = jnp.take_along_axis(sorted_logits, (n_keep - 1)[:, None], axis=-1)  # [B, 1]
  threshold = jnp.maximum(kth, pth)
  return jnp.where(logits >= threshold, logits, NEG_INF)


def sample_logits(logits: jax.Array, keys: jax.Array, temperature: jax.Array, top_k: jax.Array,
                  top_p: jax.Array, any_sampled: Optional[jax.Array] = None) -> jax.Array:
  """Picks one token per row. logits [B, V]; keys [B] PRNG keys; settings [B] -> tokens [B] int32.

  `any_sampled` ([] bool, optional) replaces `any(temperature > 0)` as the test for the sampling
  branch; it must be True whenever a row samples (the engine's data shards share one, `step_hints`).
  """
  greedy = jnp.argmax(logits, axis=-1).astype(jnp.int32)

  def sampled():
    safe_t = jnp.where(temperature > 0, temperature, 1.0)[:, None]
    filtered = filter_top_k_top_p(logits / safe_t, top_k, top_p)
    draws = jax.vmap(lambda k, l: jax.random.categorical(k, l))(keys, filtered)
    return jnp.where(temperature > 0, draws.astype(jnp.int32), greedy)

  sampling = jnp.any(temperature > 0) if any_sampled is None else any_sampled
  return jax.lax.cond(sampling, sampled, lambda: greedy)
