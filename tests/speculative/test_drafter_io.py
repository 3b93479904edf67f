"""Drafter checkpoints: round trip, and clear errors for another base model / kind / directory."""

import jax
import numpy as np
import pytest

from tiny import tiny_model, tiny_model_config

from apar_jax.speculative import hidden_transfer, medusa
from apar_jax.speculative.drafter_io import drafter_metadata, load_drafter, save_drafter
from apar_jax.speculative.fingerprint import DrafterMismatchError


@pytest.fixture(scope='module')
def base():
  model, params = tiny_model(vocab=64, n_layers=2, seed=0)
  return model.cfg, params


def test_round_trip(tmp_path, base, monkeypatch):
  cfg, params = base
  heads = jax.tree.map(lambda v: v + 1.0, medusa.init_medusa(2, 32))
  monkeypatch.chdir(tmp_path)  # relative paths work
  path = save_drafter('m', heads, kind='medusa', num_heads=2, base_params=params,
                      model_cfg=cfg, train_info={'acceptance': [[0.5, 0.1], [0.3, 0.1]]})
  loaded, meta = load_drafter('m', params, cfg, kind='medusa')
  assert meta['kind'] == 'medusa' and meta['num_heads'] == 2
  assert meta['train']['acceptance'] == [[0.5, 0.1], [0.3, 0.1]]
  jax.tree.map(np.testing.assert_array_equal, loaded, heads)
  ht = hidden_transfer.init_hidden_transfer(3, 32)
  path2 = save_drafter(str(tmp_path / 'h'), ht, kind='hidden_transfer', num_heads=3,
                       base_params=params, model_cfg=cfg, transfer_layer=1)
  assert drafter_metadata(path2)['transfer_layer'] == 1
  with pytest.raises(FileExistsError):
    save_drafter(path2, ht, kind='hidden_transfer', num_heads=3, base_params=params, model_cfg=cfg)


def test_another_base_model_is_refused(tmp_path, base):
  cfg, params = base
  path = save_drafter(str(tmp_path / 'm'), medusa.init_medusa(2, 32), kind='medusa', num_heads=2,
                      base_params=params, model_cfg=cfg)
  _, other_params = tiny_model(vocab=64, n_layers=2, seed=1)  # same shape, other weights
  with pytest.raises(DrafterMismatchError, match='another base model of the same shape'):
    load_drafter(path, other_params, cfg)
  bigger_cfg = tiny_model_config(vocab=64, n_layers=3)
  _, bigger = tiny_model(vocab=64, n_layers=3, seed=0)
  with pytest.raises(DrafterMismatchError, match='n_layers: trained for 2, this model has 3'):
    load_drafter(path, bigger, bigger_cfg)
  with pytest.raises(DrafterMismatchError, match='holds a medusa drafter, not hidden_transfer'):
    load_drafter(path, params, cfg, kind='hidden_transfer')
  # The same model in bf16 still matches (probe tolerance).
  bf16 = jax.tree.map(lambda v: v.astype('bfloat16'), params)
  load_drafter(path, bf16, cfg)


def test_not_a_drafter_directory(tmp_path, base):
  cfg, params = base
  with pytest.raises(FileNotFoundError, match='train_drafter'):
    load_drafter(str(tmp_path / 'missing'), params, cfg)
  (tmp_path / 'junk').mkdir()
  with pytest.raises(ValueError, match='not a drafter|not a readable'):
    load_drafter(str(tmp_path / 'junk'), params, cfg)
