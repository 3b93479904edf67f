"""Feed-forward building blocks of a LLaMA-family layer: RMSNorm and the SwiGLU MLP."""

import flax.linen as nn
import jax
import jax.numpy as jnp

Dtype = jnp.dtype


class RMSNorm(nn.Module):
  """Root-mean-square norm with a learned scale; statistics in fp32."""
  eps: float = 1e-5
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:  # x [..., d]
    scale = self.param('scale', nn.with_logical_partitioning(nn.initializers.ones, ('norm',)),
                       (x.shape[-1],), self.param_dtype)
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + self.eps)
    return (normed * scale.astype(jnp.float32)).astype(self.dtype)


class MLP(nn.Module):
  """SwiGLU: down(silu(gate(x)) * up(x))."""
  ffn_dim: int
  dtype: Dtype = jnp.float32
  param_dtype: Dtype = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:  # x [B, T, d] -> [B, T, d]
    d_model = x.shape[-1]
    init = nn.initializers.normal(0.02)

    def dense(name, features, axes):
      return nn.Dense(features, use_bias=False, dtype=self.dtype, param_dtype=self.param_dtype,
                      kernel_init=nn.with_logical_partitioning(init, axes), name=name)

    gate = dense('gate_proj', self.ffn_dim, ('embed', 'mlp'))(x)  # [B, T, ffn]
    up = dense('up_proj', self.ffn_dim, ('embed', 'mlp'))(x)
    hidden = nn.with_logical_constraint(nn.silu(gate) * up, ('batch', 'length', 'act_mlp'))
    return dense('down_proj', d_model, ('mlp', 'embed'))(hidden)
