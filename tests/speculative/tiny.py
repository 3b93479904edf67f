"""A tiny random model for speculative tests (small vocabulary, sharpened head so that drafts and
sampling are not uniform noise)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from apar_jax.defaults import model_config
from apar_jax.model import CausalSpec, build_model


def tiny_model_config(vocab: int = 64, n_layers: int = 3,
                      tie: bool = False) -> ml_collections.ConfigDict:
  return model_config(vocab_size=vocab, d_model=32, n_layers=n_layers, n_heads=4, n_kv_heads=2,
                      head_dim=8, ffn_dim=64, rope_theta=10000.0, norm_eps=1e-5,
                      tie_embeddings=tie, max_position=1024)


def tiny_model(vocab: int = 64, n_layers: int = 3, seed: int = 0, head_scale: float = 30.0,
               tie: bool = False):
  """(model, params): random weights; the LM head is scaled so next-token distributions are peaked."""
  cfg = tiny_model_config(vocab, n_layers, tie)
  model = build_model(cfg)
  init = jax.jit(lambda key: model.init(key, jnp.zeros((1, 1), jnp.int32),
                                        jnp.zeros((1, 1), jnp.int32), CausalSpec())['params'])
  params = init(jax.random.key(seed))
  params = jax.tree.map(np.asarray, nn.unbox(params))
  if tie:
    params['embed']['embedding'] = params['embed']['embedding'] * head_scale ** 0.5
  else:
    params['lm_head']['kernel'] = params['lm_head']['kernel'] * head_scale
  return model, jax.tree.map(jnp.asarray, params)
