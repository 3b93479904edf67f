"""Grouped-query self-attention whose K/V handling is delegated to an attention spec."""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model.rope import apply_rope


class Attention(nn.Module):
  """q/k/v projections, RoPE, `spec.attend`, output projection."""
  n_heads: int
  n_kv_heads: int
  head_dim: int
  inv_freq: Any  # np.ndarray [head_dim // 2]; static
  use_bias: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, positions: jax.Array, spec: Any, cache: Any):
    """x [B, T, d], positions [B, T] -> ([B, T, d], new layer cache)."""
    init = nn.initializers.normal(0.02)

    def proj(name, heads, axes):
      return nn.DenseGeneral((heads, self.head_dim), axis=-1, use_bias=self.use_bias,
                             dtype=self.dtype, param_dtype=self.param_dtype,
                             kernel_init=nn.with_logical_partitioning(init, ('embed',) + axes),
                             bias_init=nn.with_logical_partitioning(nn.initializers.zeros, axes),
                             name=name)

    q = proj('q_proj', self.n_heads, ('q_heads', 'head_dim'))(x)  # [B, T, Hq, D]
    k = proj('k_proj', self.n_kv_heads, ('kv_heads', 'head_dim'))(x)  # [B, T, Hkv, D]
    v = proj('v_proj', self.n_kv_heads, ('kv_heads', 'head_dim'))(x)
    q = nn.with_logical_constraint(q, ('batch', 'length', 'act_heads', 'head_dim'))
    k = nn.with_logical_constraint(k, ('batch', 'length', 'act_kv_heads', 'head_dim'))
    inv_freq = np.asarray(self.inv_freq)
    q = apply_rope(q, positions, inv_freq)
    k = apply_rope(k, positions, inv_freq)
    out, new_cache = spec.attend(q, k, v, cache, 1.0 / float(np.sqrt(self.head_dim)))
    out = nn.with_logical_constraint(out, ('batch', 'length', 'act_heads', 'head_dim'))
    o_proj = nn.DenseGeneral(
        x.shape[-1], axis=(-2, -1), use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
        kernel_init=nn.with_logical_partitioning(init, ('q_heads', 'head_dim', 'embed')),
        name='o_proj')
    return o_proj(out), new_cache
