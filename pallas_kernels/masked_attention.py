"""Dense grouped-query attention under an explicit boolean mask, in fp32: the core of both references."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def masked_attention(
    q: jax.Array,  # [B, Q, Hq, D]
    k: jax.Array,  # [B, C, Hkv, D]
    v: jax.Array,  # [B, C, Hkv, D]
    mask: jax.Array,  # [B, Q, C] bool: query i may see key c
    *,
    scale: float,
    soft_cap: float | None = None,
) -> jax.Array:  # [B, Q, Hq, D] in q.dtype
  """Softmax attention restricted to `mask`, fp32 throughout.

  A query row with no visible key returns zeros (never NaN). Keys that no query may see are
  zeroed first, so garbage (even NaN) in unused cache positions cannot leak into the output.
  """
  b, nq, hq, d = q.shape
  hkv = k.shape[2]
  if hq % hkv:
    raise ValueError(f"q heads ({hq}) must be a multiple of kv heads ({hkv})")
  g = hq // hkv
  qf = q.astype(jnp.float32).reshape(b, nq, hkv, g, d)
  seen = jnp.any(mask, axis=1)[:, :, None, None]  # [B, C, 1, 1]
  kf = jnp.where(seen, k.astype(jnp.float32), 0.0)
  vf = jnp.where(seen, v.astype(jnp.float32), 0.0)
  logits = jnp.einsum("bqhgd,bchd->bhgqc", qf, kf, precision=jax.lax.Precision.HIGHEST) * scale
  if soft_cap is not None:
    logits = soft_cap * jnp.tanh(logits / soft_cap)
  visible = mask[:, None, None, :, :]  # [B, 1, 1, Q, C]
  logits = jnp.where(visible, logits, -jnp.inf)
  row_max = jnp.max(logits, axis=-1, keepdims=True)
  row_max = jnp.where(jnp.isfinite(row_max), row_max, 0.0)
  probs = jnp.where(visible, jnp.exp(logits - row_max), 0.0)
  denom = jnp.sum(probs, axis=-1, keepdims=True)  # [B, Hkv, G, Q, 1]
  out = jnp.einsum("bhgqc,bchd->bqhgd", probs, vf, precision=jax.lax.Precision.HIGHEST)
  denom = jnp.moveaxis(denom, (1, 2, 3), (2, 3, 1))  # [B, Q, Hkv, G, 1]
  out = jnp.where(denom > 0, out / jnp.where(denom > 0, denom, 1.0), 0.0)
  return out.reshape(b, nq, hq, d).astype(q.dtype)
