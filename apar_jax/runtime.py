"""Everything a command needs to decode: the model, its params (sharded over the mesh) and the tokenizer."""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from apar_jax import distributed, sharding
from apar_jax.model import CausalSpec, Transformer, build_model
from apar_jax.tokenization import Tokenizer, load_tokenizer


@dataclasses.dataclass
class Runtime:
  config: ml_collections.ConfigDict
  model: Transformer
  params: Any
  tokenizer: Tokenizer
  mesh: jax.sharding.Mesh


def load_tokenizer_from_config(config: ml_collections.ConfigDict) -> Tokenizer:
  """The config's tokenizer; path 'default' means the default model's GGUF."""
  path = config.tokenizer.path
  if path == 'default':
    from apar_jax.weights import default_gguf_path
    path = default_gguf_path()
  if not path:
    raise ValueError('config.tokenizer.path is empty: pass --config.tokenizer.path=FILE')
  return load_tokenizer(config.tokenizer.kind, path)


def check_vocab(config: ml_collections.ConfigDict, tokenizer: Tokenizer) -> None:
  """The model must have a row for every token id the tokenizer can produce."""
  if tokenizer.vocab_size > config.model.vocab_size:
    raise ValueError(
        f'the tokenizer has {tokenizer.vocab_size} tokens (APAR tokens included) but the model '
        f'config has vocab_size {config.model.vocab_size}; set --config.model.vocab_size='
        f'{tokenizer.vocab_size}')


def load_model_params(config: ml_collections.ConfigDict, shardings: Any = None) -> Any:
  """The config's weights, with its APAR adapter (`config.weights.adapter`, if set) merged in."""
  from apar_jax.weights import load_params
  params = load_params(config, shardings=shardings)
  adapter_path = config.weights.get('adapter', '')
  if adapter_path:
    from apar_jax.weights.adapter_io import load_adapter
    from apar_jax.weights.lora import apply_adapter
    params = apply_adapter(params, load_adapter(adapter_path))
  return params


def load_runtime(config: ml_collections.ConfigDict) -> Runtime:
  """Builds the model, loads params into their shardings on the config's mesh, loads the tokenizer."""
  tokenizer = load_tokenizer_from_config(config)
  check_vocab(config, tokenizer)
  model = build_model(config.model)
  mesh = distributed.make_global_mesh(config.mesh)
  shardings = None
  if mesh.size > 1:
    example = (jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32), CausalSpec())
    with mesh, nn.logical_axis_rules(sharding.logical_rules(config)):
      shardings = sharding.param_shardings(model, config, mesh, example)
  # Each leaf is placed in its sharding as it loads (orbax restores straight into them).
  params = load_model_params(config, shardings=shardings)
  return Runtime(config, model, params, tokenizer, mesh)
