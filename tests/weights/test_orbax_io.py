"""orbax save/restore: bit-exact round trips, restore into target shardings, convert, load_params."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from apar_jax import sharding as sharding_lib
from apar_jax import weights
from apar_jax.model import build_model
from weights_testlib import (load_repo_config, make_hf_llama, numpy_random_params,
                             write_llama_gguf)


def _tiny_model_cfg(vocab: int = 96, tie: bool = False) -> ml_collections.ConfigDict:
  cfg = load_repo_config('tiny').model
  cfg.vocab_size, cfg.tie_embeddings = vocab, tie
  return cfg


def _assert_bit_exact(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert x.dtype == y.dtype and x.shape == y.shape
    np.testing.assert_array_equal(np.asarray(x).view(np.uint8), np.asarray(y).view(np.uint8))


@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_round_trip_is_bit_exact(tmp_path, dtype):
  cfg = _tiny_model_cfg()
  cfg.param_dtype = dtype
  params = numpy_random_params(cfg, seed=3)
  assert jax.tree.leaves(params)[0].dtype == jnp.dtype(dtype)
  path = weights.save_params(str(tmp_path / 'ckpt'), params, model_cfg=cfg)
  _assert_bit_exact(weights.restore_params(path), params)
  assert weights.saved_model_config(path).to_dict() == cfg.to_dict()


def test_restore_into_target_shardings(tmp_path):
  config = load_repo_config('tiny')
  config.model.vocab_size = 96
  params = numpy_random_params(config.model)
  path = weights.save_params(str(tmp_path / 'ckpt'), params)
  mesh = sharding_lib.make_mesh(config.mesh, jax.devices()[:1])
  tokens = jnp.zeros((1, 1), jnp.int32)
  from apar_jax.model import CausalSpec
  targets = sharding_lib.param_shardings(build_model(config.model), config, mesh,
                                         (tokens, tokens, CausalSpec()))
  restored = weights.restore_params(path, target_shardings=targets)
  _assert_bit_exact(restored, params)
  for leaf, target in zip(jax.tree.leaves(restored), jax.tree.leaves(targets)):
    assert leaf.sharding == target
  one = NamedSharding(mesh, PartitionSpec())
  restored = weights.restore_params(path, target_shardings=one)  # one sharding for every leaf
  assert all(leaf.sharding == one for leaf in jax.tree.leaves(restored))


def test_restore_with_abstract_casts_and_checks_shapes(tmp_path):
  cfg = _tiny_model_cfg()
  params = numpy_random_params(cfg)
  path = weights.save_params(str(tmp_path / 'ckpt'), params)
  bf16 = _tiny_model_cfg()
  bf16.param_dtype = 'bfloat16'
  restored = weights.restore_params(path, abstract=weights.abstract_params(bf16))
  leaf = restored['layers_0']['mlp']['up_proj']['kernel']
  assert leaf.dtype == jnp.bfloat16
  np.testing.assert_array_equal(np.asarray(leaf),
                                np.asarray(params['layers_0']['mlp']['up_proj']['kernel'],
                                           jnp.bfloat16))
  with pytest.raises(weights.ShapeMismatchError, match='stored with shape'):
    weights.restore_params(path, abstract=weights.abstract_params(_tiny_model_cfg(vocab=100)))
  with pytest.raises(weights.CheckpointExistsError, match='overwrite=True'):
    weights.save_params(path, params)
  weights.save_params(path, params, overwrite=True)


def test_convert_hf_and_gguf_then_load_params(tmp_path):
  hf_model = make_hf_llama(str(tmp_path / 'hf'), tie=True)
  gguf_path = write_llama_gguf(str(tmp_path / 'm.gguf'), hf_model)
  from_hf = weights.convert('hf', str(tmp_path / 'hf'), str(tmp_path / 'from_hf'), progress=False)
  from_gguf = weights.convert('gguf', gguf_path, str(tmp_path / 'from_gguf'), progress=False)
  cfg = weights.model_config_from_hf(str(tmp_path / 'hf'))
  direct = weights.load_hf_checkpoint(str(tmp_path / 'hf'), cfg, progress=False)
  _assert_bit_exact(weights.restore_params(from_hf), direct)
  _assert_bit_exact(weights.restore_params(from_gguf), direct)  # F32 GGUF: identical values
  assert weights.checkpoint_model_config('orbax', from_gguf).d_model == cfg.d_model
  # load_params grows the vocabulary of an orbax checkpoint for the control tokens.
  config = load_repo_config('tiny')
  config.model = weights.model_config_from_hf(str(tmp_path / 'hf'))
  config.model.vocab_size = 98
  config.weights.source, config.weights.path = 'orbax', from_hf
  params = weights.load_params(config)
  assert params['embed']['embedding'].shape == (98, 64)
  np.testing.assert_array_equal(np.asarray(params['embed']['embedding'][:96]),
                                np.asarray(direct['embed']['embedding']))
  config.model.n_layers = 3
  with pytest.raises(weights.ShapeMismatchError, match='n_layers'):
    weights.load_params(config)
