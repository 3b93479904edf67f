"""Vocabulary growth, `load_params` dispatch, and the model-config contract with
`apar_jax.defaults.model_config`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax import sharding as sharding_lib
from apar_jax import weights
from apar_jax.model import CausalSpec, build_model
from weights_testlib import load_repo_config, make_hf_llama, numpy_random_params, write_llama_gguf


def _flat_keys(d, prefix=''):
  out = set()
  for k, v in d.items():
    out |= _flat_keys(v, f'{prefix}{k}.') if isinstance(v, dict) else {prefix + k}
  return out


def test_model_config_fields_match_base_config(tmp_path):
  make_hf_llama(str(tmp_path))
  base = load_repo_config('tiny').model.to_dict()
  assert _flat_keys(weights.model_config_from_hf(str(tmp_path)).to_dict()) == _flat_keys(base)


@pytest.mark.parametrize('tie', [True, False])
@pytest.mark.parametrize('dtype', ['float32', 'bfloat16'])
def test_grow_vocab_appends_mean_rows(tie, dtype):
  cfg = load_repo_config('tiny').model
  cfg.vocab_size, cfg.tie_embeddings, cfg.param_dtype = 40, tie, dtype
  params = numpy_random_params(cfg)
  grown = weights.grow_vocab(params, 42, tie_embeddings=tie)
  emb = grown['embed']['embedding']
  assert emb.shape == (42, 64) and emb.dtype == jnp.dtype(dtype)
  np.testing.assert_array_equal(np.asarray(emb[:40]), np.asarray(params['embed']['embedding']))
  mean = np.asarray(params['embed']['embedding'], np.float32).mean(0)
  np.testing.assert_allclose(np.asarray(emb[40:], np.float32), np.stack([mean, mean]),
                             rtol=1e-2 if dtype == 'bfloat16' else 1e-6, atol=1e-7)
  if not tie:
    head = grown['lm_head']['kernel']
    assert head.shape == (64, 42)
    col = np.asarray(params['lm_head']['kernel'], np.float32).mean(1)
    np.testing.assert_allclose(np.asarray(head[:, 41], np.float32), col,
                               rtol=1e-2 if dtype == 'bfloat16' else 1e-6, atol=1e-7)
  assert grown['layers_0'] is params['layers_0']  # everything else untouched
  assert weights.grow_vocab(params, 40, tie) is params
  with pytest.raises(weights.ShapeMismatchError, match='cannot shrink'):
    weights.grow_vocab(params, 39, tie)


def test_load_params_random_matches_model_init():
  config = load_repo_config('tiny')
  config.model.vocab_size = 64
  params = weights.load_params(config)
  abstract = weights.abstract_params(config.model)
  assert jax.tree.structure(params) == jax.tree.structure(abstract)
  assert all(p.shape == a.shape for p, a in zip(jax.tree.leaves(params), jax.tree.leaves(abstract)))
  np.testing.assert_array_equal(np.asarray(params['final_norm']['scale']), np.ones(64))
  std = float(np.asarray(params['embed']['embedding']).std())
  assert 0.015 < std < 0.025  # normal(0.02) init of the model


@pytest.mark.parametrize('source', ['hf', 'gguf'])
def test_load_params_grows_vocab_and_places_shardings(tmp_path, source):
  hf_model = make_hf_llama(str(tmp_path / 'hf'))
  gguf_path = write_llama_gguf(str(tmp_path / 'm.gguf'), hf_model)
  config = load_repo_config('tiny')
  config.model = weights.model_config_from_hf(str(tmp_path / 'hf'))
  config.model.vocab_size += 2  # [Fork], [Child]
  config.weights.source = source
  config.weights.path = str(tmp_path / 'hf') if source == 'hf' else gguf_path
  mesh = sharding_lib.make_mesh(config.mesh, jax.devices()[:1])
  tokens = jnp.zeros((1, 1), jnp.int32)
  targets = sharding_lib.param_shardings(build_model(config.model), config, mesh,
                                         (tokens, tokens, CausalSpec()))
  params = weights.load_params(config, shardings=targets, progress=False)
  assert params['embed']['embedding'].shape == (98, 64)
  assert params['lm_head']['kernel'].shape == (64, 98)
  for leaf, target in zip(jax.tree.leaves(params), jax.tree.leaves(targets)):
    assert leaf.sharding == target


def test_load_params_bad_source():
  config = load_repo_config('tiny')
  config.weights.source = 'pickle'
  with pytest.raises(weights.WeightsError, match='unknown weights source'):
    weights.load_params(config)
  config.weights.source, config.weights.path = 'hf', ''
  with pytest.raises(weights.WeightsError, match='needs a path'):
    weights.load_params(config)
