"""`load_model_params` merges the config's APAR adapter into the loaded weights."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.runtime import load_model_params
from apar_jax.training import LoraSpec, apply_adapter, init_adapter, save_adapter
from apar_jax.weights import load_params


def test_adapter_from_the_config_is_merged(tiny_config, tmp_path):
  tiny_config.model.vocab_size = 64
  base = load_params(tiny_config, progress=False)
  spec = LoraSpec(rank=2, alpha=4.0, targets=('q_proj', 'down_proj'), token_ids=(62, 63))
  adapter = init_adapter(base, spec, jax.random.key(0))
  # A trained adapter has B != 0 and its own control-token rows.
  weights = jax.tree.map(lambda x: x + 0.01, adapter.weights)
  adapter = dataclasses.replace(adapter, weights=weights)
  save_adapter(str(tmp_path / 'adapter'), adapter)

  tiny_config.weights.adapter = str(tmp_path / 'adapter')
  merged = load_model_params(tiny_config)
  expected = apply_adapter(base, adapter)
  for got, want in zip(jax.tree.leaves(merged), jax.tree.leaves(expected)):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-6)
  q = merged['layers_0']['attention']['q_proj']['kernel']
  assert not np.allclose(np.asarray(q), np.asarray(base['layers_0']['attention']['q_proj']['kernel']))
  np.testing.assert_allclose(np.asarray(merged['embed']['embedding'][62]),
                             np.asarray(weights['embed_rows'][0]), atol=1e-6)


def test_missing_adapter_says_how_to_get_one(tiny_config, tmp_path):
  tiny_config.model.vocab_size = 64
  tiny_config.weights.adapter = str(tmp_path / 'nope')
  with pytest.raises(FileNotFoundError, match='train one'):
    load_model_params(tiny_config)
