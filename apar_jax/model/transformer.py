"""The LLaMA-family decoder, a Flax Linen module used functionally.

    out = Transformer(cfg).apply({'params': params}, tokens, positions, spec, caches)

`tokens`/`positions` [B, T]; `spec` an attention spec (see attention_spec.py); `caches` a tuple with one
cache per layer (or None for CausalSpec). Returns `ModelOutput(logits [B, T, V], caches, hidden)`.
"""

from typing import Any, Optional, Sequence

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from apar_jax.model.attention import Attention
from apar_jax.model.layers import MLP, RMSNorm
from apar_jax.model.rope import rope_inv_freq


@flax.struct.dataclass
class ModelOutput:
  logits: jax.Array  # [B, T, V] fp32
  caches: Any  # tuple of per-layer caches (or None)
  hidden: Optional[jax.Array] = None  # [B, T, d] after the final norm, when asked for


class DecoderLayer(nn.Module):
  """Pre-norm attention + pre-norm SwiGLU MLP, both residual."""
  cfg: Any  # ml_collections.FrozenConfigDict of the model

  @nn.compact
  def __call__(self, x, positions, spec, cache):
    cfg = self.cfg
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    inv_freq = tuple(float(f) for f in rope_inv_freq(
        cfg.head_dim, cfg.rope_theta, cfg.rope_scaling.kind, cfg.rope_scaling.factor,
        cfg.rope_scaling.low_freq_factor, cfg.rope_scaling.high_freq_factor,
        cfg.rope_scaling.original_max_position))
    h = RMSNorm(cfg.norm_eps, dtype, param_dtype, name='attention_norm')(x)
    attn_out, new_cache = Attention(cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, inv_freq,
                                    cfg.attention_bias, dtype, param_dtype, name='attention')(
                                        h, positions, spec, cache)
    x = x + attn_out
    h = RMSNorm(cfg.norm_eps, dtype, param_dtype, name='mlp_norm')(x)
    x = x + MLP(cfg.ffn_dim, dtype, param_dtype, name='mlp')(h)
    return nn.with_logical_constraint(x, ('batch', 'length', 'act_embed')), new_cache


class Transformer(nn.Module):
  """Embeddings, `n_layers` decoder layers, final norm and LM head (tied or not)."""
  cfg: Any

  @nn.compact
  def __call__(self, tokens: jax.Array, positions: jax.Array, spec: Any,
               caches: Optional[Sequence[Any]] = None, return_hidden: bool = False) -> ModelOutput:
    cfg = self.cfg
    dtype, param_dtype = jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype)
    embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=dtype, param_dtype=param_dtype,
                     embedding_init=nn.with_logical_partitioning(nn.initializers.normal(0.02),
                                                                 ('vocab', 'embed')),
                     name='embed')
    x = embed(tokens)  # [B, T, d]
    x = nn.with_logical_constraint(x, ('batch', 'length', 'act_embed'))
    layer_cls = nn.remat(DecoderLayer, static_argnums=()) if cfg.remat else DecoderLayer
    new_caches = []
    for i in range(cfg.n_layers):
      cache = None if caches is None else caches[i]
      x, cache = layer_cls(cfg, name=f'layers_{i}')(x, positions, spec, cache)
      new_caches.append(cache)
    x = RMSNorm(cfg.norm_eps, dtype, param_dtype, name='final_norm')(x)
    if cfg.tie_embeddings:
      logits = embed.attend(x)
    else:
      logits = nn.Dense(cfg.vocab_size, use_bias=False, dtype=dtype, param_dtype=param_dtype,
                        kernel_init=nn.with_logical_partitioning(nn.initializers.normal(0.02),
                                                                 ('embed', 'vocab')),
                        name='lm_head')(x)
    logits = nn.with_logical_constraint(logits.astype(jnp.float32), ('batch', 'length', 'act_vocab'))
    return ModelOutput(logits, None if caches is None else tuple(new_caches),
                       x if return_hidden else None)


def frozen_model_config(model_cfg: ml_collections.ConfigDict) -> ml_collections.FrozenConfigDict:
  """A hashable copy of a model config, usable as a Flax module attribute."""
  return ml_collections.FrozenConfigDict(model_cfg)


def build_model(model_cfg: ml_collections.ConfigDict) -> Transformer:
  return Transformer(frozen_model_config(model_cfg))
