"""Runs pieces of the base model functionally: embeddings, a range of decoder layers, norm and head.

Hidden Transfer needs what the model's forward does not expose: the hidden state entering layer l,
and running layers l .. L-1 on extra (pseudo) tokens. The pieces below apply the model's own
submodules (`DecoderLayer`, `RMSNorm`) to the same param subtrees, so they compute exactly what
`Transformer.__call__` computes; `apar_jax/model/` is not modified.
"""

from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp

from apar_jax.model import ModelOutput, Transformer
from apar_jax.model.layers import RMSNorm
from apar_jax.model.transformer import DecoderLayer


def embed(params: Any, cfg: Any, tokens: jax.Array) -> jax.Array:
  """tokens [B, T] -> [B, T, d] in the compute dtype (as `nn.Embed`)."""
  table = params['embed']['embedding']
  return jnp.take(table, tokens, axis=0).astype(jnp.dtype(cfg.dtype))


def run_layers(params: Any, cfg: Any, x: jax.Array, positions: jax.Array, spec: Any,
               caches: Optional[Sequence[Any]], start: int, stop: int
               ) -> tuple[jax.Array, Optional[tuple]]:
  """Applies decoder layers start .. stop-1 to x [B, T, d]; caches is the full per-layer tuple (or
  None) and comes back with those layers' entries replaced."""
  if not 0 <= start <= stop <= cfg.n_layers:
    raise ValueError(f'layer range [{start}, {stop}) is outside the model\'s {cfg.n_layers} layers')
  new = None if caches is None else list(caches)
  layer = DecoderLayer(cfg)
  for i in range(start, stop):
    cache = None if caches is None else caches[i]
    x, cache = layer.apply({'params': params[f'layers_{i}']}, x, positions, spec, cache)
    if new is not None:
      new[i] = cache
  return x, None if new is None else tuple(new)


def final_norm(params: Any, cfg: Any, x: jax.Array) -> jax.Array:
  """The model's final RMSNorm: [..., d] -> [..., d]."""
  norm = RMSNorm(cfg.norm_eps, jnp.dtype(cfg.dtype), jnp.dtype(cfg.param_dtype))
  return norm.apply({'params': params['final_norm']}, x)


def lm_logits(params: Any, cfg: Any, h: jax.Array) -> jax.Array:
  """The LM head on normed hidden states: [..., d] -> fp32 logits [..., V] (tied or not)."""
  dtype = jnp.dtype(cfg.dtype)
  if cfg.tie_embeddings:
    w = params['embed']['embedding'].astype(dtype)  # [V, d]
    logits = jnp.einsum('...d,vd->...v', h.astype(dtype), w)
  else:
    w = params['lm_head']['kernel'].astype(dtype)  # [d, V]
    logits = jnp.einsum('...d,dv->...v', h.astype(dtype), w)
  return logits.astype(jnp.float32)


def lm_head_fn(params: Any, cfg: Any):
  """A closure h [..., d] -> logits [..., V] sharing the base model's LM head (Medusa)."""
  return lambda h: lm_logits(params, cfg, h)


def forward_with_layer_hidden(model: Transformer, params: Any, tokens: jax.Array,
                              positions: jax.Array, spec: Any, caches: Optional[Sequence[Any]],
                              layer: int) -> tuple[ModelOutput, jax.Array]:
  """The model's own forward (hidden returned) plus the hidden state entering layer `layer`.

  layer 0 = the embeddings; layer L = the last layer's output (before the final norm).
  Returns (ModelOutput with hidden [B, T, d], h [B, T, d]).
  """
  n = model.cfg.n_layers
  if not 0 <= layer <= n:
    raise ValueError(f'transfer layer {layer} is outside [0, {n}] for a {n}-layer model')
  name = 'embed' if layer == 0 else f'layers_{layer - 1}'
  out, state = model.apply({'params': params}, tokens, positions, spec, caches, return_hidden=True,
                           capture_intermediates=lambda m, method: m.name == name and
                           method == '__call__', mutable=['intermediates'])
  captured = state['intermediates'][name]['__call__'][0]
  h = captured if layer == 0 else captured[0]  # a decoder layer returns (x, cache)
  return out, h
