"""The measured step-cost cache: measured once per key, read back, re-measured on request, and never
an error when the file is missing, corrupt or not writable."""

import json
import os

import numpy as np
import pytest

from tiny import tiny_model

from apar_jax.speculative import step_cost
from apar_jax.speculative.medusa import init_medusa


@pytest.fixture(scope='module')
def model_params():
  return tiny_model()


def _costs(model_params, path, **kw):
  model, params = model_params
  heads = init_medusa(2, 32)
  draft = lambda h, k: step_cost.draft_work(  # noqa: E731
      'medusa', params, heads, model.cfg, h, k, 64, 3, 1)
  return step_cost.step_costs(model, params, [1, 2], [1, 2, 4], draft, [(1, 1), (2, 2)], 'medusa',
                              context=16, page_size=8, cache_path=path, repeats=1,
                              log=lambda m: None, **kw)


def test_measures_once_then_reads_the_cache(model_params, tmp_path):
  path = str(tmp_path / 'sub' / 'costs.json')
  first = _costs(model_params, path)
  assert len(first.measured) == 4  # forward and draft, for 1 and 2 rows
  assert set(first.forward) == {1, 2} and set(first.forward[1]) == {1, 2, 4}
  assert set(first.draft[2]) == {(1, 1), (2, 2)}
  assert all(v > 0 for r in first.forward.values() for v in r.values())
  again = _costs(model_params, path)
  assert again.measured == ()
  assert again.forward == first.forward and again.draft == first.draft
  remeasured = _costs(model_params, path, remeasure=True)
  assert len(remeasured.measured) == 4


def test_only_missing_sizes_are_measured(model_params, tmp_path):
  path = str(tmp_path / 'costs.json')
  _costs(model_params, path)
  data = json.load(open(path))
  key = next(k for k in data['entries'] if k.startswith('forward') and k.endswith('rows 1'))
  del data['entries'][key]['seconds']['4']
  json.dump(data, open(path, 'w'))
  again = _costs(model_params, path)
  assert again.measured == (key,)
  assert set(again.forward[1]) == {1, 2, 4}


def test_corrupt_or_foreign_cache_is_measured_over(model_params, tmp_path, capsys):
  path = tmp_path / 'costs.json'
  path.write_text('{not json')
  costs = _costs(model_params, str(path))
  assert len(costs.measured) == 4
  assert 'ignoring the unreadable cache' in capsys.readouterr().err
  assert json.load(open(path))['version'] == step_cost.CACHE_VERSION
  path.write_text(json.dumps({'version': 999, 'entries': {'x': 1}}))
  assert len(_costs(model_params, str(path)).measured) == 4


def test_unwritable_cache_only_warns(model_params, tmp_path, capsys):
  blocker = tmp_path / 'file'
  blocker.write_text('')
  costs = _costs(model_params, str(blocker / 'costs.json'))  # a file where a folder should be
  assert len(costs.measured) == 4
  assert 'could not write the cache' in capsys.readouterr().err


def test_no_cache_file_and_the_default_location(model_params, tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert len(_costs(model_params, '').measured) == 4
  assert os.listdir(tmp_path) == []
  monkeypatch.setenv(step_cost.CACHE_DIR_ENV, str(tmp_path / 'c'))
  assert step_cost.cache_file('default') == str(tmp_path / 'c' / 'step_costs.json')
  monkeypatch.delenv(step_cost.CACHE_DIR_ENV)
  assert step_cost.cache_file('default') == os.path.expanduser('~/.cache/apar_jax/step_costs.json')
  assert step_cost.cache_file('~/x.json') == os.path.expanduser('~/x.json')


@pytest.mark.parametrize('kind,heads', [('medusa', 2), ('hidden_transfer', 2), ('lookup', 3)])
def test_every_drafter_has_a_draft_cost(model_params, kind, heads):
  model, params = model_params
  dparams = init_medusa(2, 32) if kind == 'medusa' else None
  thunk = step_cost.draft_work(kind, params, dparams, model.cfg, heads, 2, 64, 3, 1)(3)
  out = np.asarray(thunk())
  assert out.shape == ((3, heads, 2) if kind != 'lookup' else (3, heads, 1))
