"""With an APAR adapter in the config, `bench` decodes APAR modes with the fine-tune and measures them
against AR on that same fine-tune (`ar_apar_model`); AR keeps the base model."""

import dataclasses
import json

import jax
import pytest

from apar_jax.bench.harness import run_bench
from apar_jax.bench.report import markdown
from apar_jax.bench.settings import BenchSettings
from apar_jax.runtime import load_runtime
from apar_jax.training import LoraSpec, init_adapter, save_adapter
from apar_jax.weights import load_params
from bench_testlib import PROMPTS


@pytest.fixture(scope='module')
def apar_config(load_config, tmp_path_factory):
  """The tiny config with an APAR adapter far enough from zero to change its greedy answers (its
  [Fork]/[Child] rows left as initialised: it does not fork)."""
  config = load_config('tiny')
  base = load_params(config, progress=False)
  vocab = int(config.model.vocab_size)
  spec = LoraSpec(rank=2, alpha=4.0, targets=('q_proj', 'down_proj'),
                  token_ids=(vocab - 2, vocab - 1))
  adapter = init_adapter(base, spec, jax.random.key(0))
  weights = {k: v if k in ('embed_rows', 'head_cols') else jax.tree.map(lambda x: x + 0.5, v)
             for k, v in adapter.weights.items()}
  adapter = dataclasses.replace(adapter, weights=weights)
  path = save_adapter(str(tmp_path_factory.mktemp('adapter') / 'apar'), adapter)
  config.weights.apar_adapter = path
  return config


def _settings(tmp_path, **overrides):
  prompts = tmp_path / 'prompts.jsonl'
  prompts.write_text('\n'.join(json.dumps(p) for p in PROMPTS) + '\n')
  return BenchSettings(**dict(dict(
      modes=('apar',), prompts_file=str(prompts), max_new_tokens=6, repeats=1, peers=False,
      serving_modes=('ar', 'apar'), serving_requests=3, serving_rate=50.0, serving_page_budget=16,
      serving_slots=4, serving_chunk_steps=4, roofline=False, timeline=False, progress=False),
      **overrides))


def test_apar_modes_run_the_fine_tune_against_ar_on_it(apar_config, tmp_path):
  report = run_bench(load_runtime(apar_config), _settings(tmp_path), command='pytest')
  assert report['models'] == {'base': apar_config.name,
                              'apar_adapter': apar_config.weights.apar_adapter}
  modes = {m['name']: m for m in report['modes'] if m['status'] != 'skipped'}  # peers are off
  assert list(modes) == ['ar', 'ar_apar_model', 'apar']
  assert all(m['status'] == 'ok' for m in modes.values())
  # The fine-tune answers differently from the base model...
  assert not all(p['same_tokens_as_ar'] for p in modes['ar_apar_model']['per_prompt'])
  # ...and APAR (no fork here) gives exactly its AR answers: measured against ar_apar_model.
  assert modes['apar']['forks'] == 0 and modes['apar']['same_tokens_as_ar'] == 1.0
  assert modes['apar']['speedup_vs_ar'] is not None
  serving = report['serving']
  assert list(serving) == ['ar', 'ar_apar_model', 'apar']
  assert all(e['status'] == 'ok' for e in serving.values())
  assert serving['ar_apar_model']['throughput_vs_ar'] is not None  # against the base AR
  assert 'ar_apar_model' in markdown(report) and apar_config.weights.apar_adapter in markdown(report)


def test_noapar_model_keeps_the_base_model(apar_config, tmp_path):
  settings = _settings(tmp_path, apar_model=False, serving=False)
  report = run_bench(load_runtime(apar_config), settings, command='pytest')
  assert report['models']['apar_adapter'] is None
  modes = {m['name']: m for m in report['modes'] if m['status'] != 'skipped'}
  assert list(modes) == ['ar', 'apar']
  assert modes['apar']['same_tokens_as_ar'] == 1.0  # same model, no fork
