"""Medusa heads (arXiv 2401.10774): K residual blocks on the base model's last hidden state.

Head i maps the normed hidden state h of the token at position n to x_i = h + SiLU(W_i h + b_i)
(W_i, b_i zero-initialised, so an untrained head reproduces h) and the base model's own LM head turns
x_i into logits for the token at n + 2 + i. The base predicts n + 1 itself (the bonus token), so head i
drafts tree depth i + 1.

Params: {'head_{i}': {'kernel': [d, d], 'bias': [d]}} for i < K.
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from apar_jax.speculative.top_tokens import top_tokens


class MedusaHeads(nn.Module):
  """x [..., d] -> [..., K, d] (one residual block per head)."""
  num_heads: int
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    d = x.shape[-1]
    outs = []
    for i in range(self.num_heads):
      dense = nn.Dense(d, dtype=self.dtype, param_dtype=self.param_dtype,
                       kernel_init=nn.initializers.zeros, bias_init=nn.initializers.zeros,
                       name=f'head_{i}')
      outs.append(x + nn.silu(dense(x)))
    return jnp.stack(outs, axis=-2)


def init_medusa(num_heads: int, d_model: int, seed: int = 0, param_dtype: Any = jnp.float32) -> Any:
  """Fresh (zero) head params."""
  if num_heads < 1:
    raise ValueError(f'Medusa needs at least one head, got num_heads={num_heads}')
  module = MedusaHeads(num_heads, param_dtype=param_dtype)
  return module.init(jax.random.key(seed), jnp.zeros((1, d_model), param_dtype))['params']


def num_heads_of(params: Any) -> int:
  """K from a head param tree."""
  return sum(1 for k in params if k.startswith('head_'))


def head_states(params: Any, hidden: jax.Array) -> jax.Array:
  """hidden [..., d] (after the base's final norm) -> [..., K, d]."""
  return MedusaHeads(num_heads_of(params), dtype=hidden.dtype).apply({'params': params}, hidden)


def head_logits(params: Any, hidden: jax.Array, lm_head: Callable[[jax.Array], jax.Array]
                ) -> jax.Array:
  """hidden [..., d] -> logits [..., K, V] through the shared LM head."""
  return lm_head(head_states(params, hidden))


def propose(params: Any, hidden: jax.Array, lm_head: Callable[[jax.Array], jax.Array],
            topk: int) -> jax.Array:
  """Draft for the next step: hidden [S, d] of the last committed token -> tokens [S, K, topk]."""
  return top_tokens(head_logits(params, hidden, lm_head), topk)
