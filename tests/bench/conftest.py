"""One small benchmark run on the tiny model, shared by the harness tests."""

import json

import pytest

from apar_jax.bench.harness import run_bench
from apar_jax.bench.settings import BenchSettings
from bench_testlib import BUDGET, PROMPTS


@pytest.fixture(scope='session')
def tiny_runtime(load_config):
  from apar_jax.runtime import load_runtime
  return load_runtime(load_config('tiny'))


@pytest.fixture(scope='session')
def bench_settings(tmp_path_factory):
  path = tmp_path_factory.mktemp('prompts') / 'prompts.jsonl'
  path.write_text('\n'.join(json.dumps(p) for p in PROMPTS) + '\n')
  return BenchSettings(
      modes=('apar', 'no_such_mode'), prompts_file=str(path), max_new_tokens=6, repeats=2,
      serving_modes=('ar', 'apar', 'no_such_mode'), serving_requests=5, serving_rate=50.0,
      serving_page_budget=BUDGET, serving_slots=4, serving_chunk_steps=4,
      bandwidth_bytes=1 << 24, progress=False)


@pytest.fixture(scope='session')
def report(tiny_runtime, bench_settings):
  return run_bench(tiny_runtime, bench_settings, command='pytest')
