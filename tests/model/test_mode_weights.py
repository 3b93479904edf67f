"""APAR modes decode with the config's APAR adapter by default; other modes keep the base weights."""

import pytest

from apar_jax.mode_weights import config_for_mode


def test_apar_modes_take_the_apar_adapter(load_config, tmp_path):
  config = load_config('smollm2_135m')
  config.weights.apar_adapter = str(tmp_path)
  for mode in ('apar', 'apar_medusa', 'apar_lookup'):
    assert config_for_mode(config, mode, announce=False).weights.adapter == str(tmp_path)
  for mode in ('ar', 'medusa', 'lookup', 'hidden_transfer'):
    assert config_for_mode(config, mode).weights.adapter == ''
  assert config.weights.adapter == ''  # the caller's config is not modified


def test_an_explicit_adapter_or_an_empty_apar_adapter_wins(load_config, tmp_path):
  config = load_config('smollm2_135m')
  config.weights.adapter = 'mine'
  assert config_for_mode(config, 'apar').weights.adapter == 'mine'
  config.weights.adapter = ''
  config.weights.apar_adapter = ''
  assert config_for_mode(config, 'apar').weights.adapter == ''


def test_a_missing_apar_adapter_says_how_to_get_one(load_config, tmp_path):
  config = load_config('smollm2_135m')
  config.weights.apar_adapter = str(tmp_path / 'absent')
  with pytest.raises(FileNotFoundError, match='apar_jax train --config=configs/apar_smollm2_135m.py'):
    config_for_mode(config, 'apar')


def test_the_default_config_points_at_the_bundled_adapter(load_config):
  apar = load_config('apar_smollm2_135m')
  assert load_config('smollm2_135m').weights.apar_adapter == apar.weights.adapter
