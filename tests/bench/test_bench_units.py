"""Pieces of the harness without a model: prompts, arrivals, statistics, failure handling."""

import numpy as np
import pytest

from apar_jax.bench.contender import Sample
from apar_jax.bench.latency import ContenderRun, run_latency
from apar_jax.bench.metrics import summarize
from apar_jax.bench.prompts import CATEGORIES, CATEGORY_PROMPTS_FILE, KINDS, load_prompts
from apar_jax.bench.categories import category_table
from apar_jax.bench.serving import poisson_arrivals
from apar_jax.bench.settings import BenchSettings
from apar_jax.bench.stats import percentile, spread


def test_default_prompt_set():
  prompts = load_prompts()
  assert 12 <= len(prompts) <= 24
  assert {p.kind for p in prompts} == set(KINDS)
  assert len({p.prompt for p in prompts}) == len(prompts)


def test_prompt_files(tmp_path):
  (tmp_path / 'a.txt').write_text('one\n\ntwo\n')
  assert [(p.prompt, p.kind) for p in load_prompts(str(tmp_path / 'a.txt'))] == [
      ('one', 'unlabelled'), ('two', 'unlabelled')]
  (tmp_path / 'u.jsonl').write_text('{"prompt": "a\u2028b"}\n{"prompt": "c"}\n', encoding='utf-8')
  assert [p.prompt for p in load_prompts(str(tmp_path / 'u.jsonl'))] == ['a\u2028b', 'c']
  (tmp_path / 'b.jsonl').write_text('{"prompt": "x", "kind": "poem"}\n')
  with pytest.raises(ValueError, match='kind'):
    load_prompts(str(tmp_path / 'b.jsonl'))
  with pytest.raises(FileNotFoundError):
    load_prompts(str(tmp_path / 'missing.jsonl'))
  (tmp_path / 'c.jsonl').write_text('{"prompt": "x", "category": 3}\n')
  with pytest.raises(ValueError, match='category'):
    load_prompts(str(tmp_path / 'c.jsonl'))


def test_category_prompt_set_covers_the_thirteen_categories():
  prompts = load_prompts(CATEGORY_PROMPTS_FILE)
  assert [p.category for p in prompts] == [c for c in CATEGORIES for _ in range(4)]
  assert len({p.prompt for p in prompts}) == 52 and {p.kind for p in prompts} == {'unlabelled'}


def _result(tokens, steps, per_step):
  return Sample([1] * tokens, tokens, steps, 1.0, ttft_s=0.1, mean_accepted_tokens=per_step)


def test_figures_per_category():
  ar = ContenderRun('ar', 'engine')
  ar.samples = [[_result(8, 8, 1.0), _result(8, 8, 1.0), _result(6, 6, 1.0)]]
  spec = ContenderRun('lookup', 'engine')
  spec.samples = [[_result(8, 4, 2.0), _result(8, 8, 1.0), _result(6, 2, 3.0)]]
  entry = summarize(spec, ar, ['plain'] * 3, None, ['math', 'qa', 'math'])
  assert entry['by_category']['math']['mean_accepted_tokens'] == pytest.approx(14 / 6)
  assert entry['by_category']['qa']['decode_steps'] == 8
  assert summarize(spec, ar, ['plain'] * 3, None)['by_category'] is None  # no categories
  table = category_table({'ar': ar.samples[0], 'lookup': spec.samples[0]}, ['math', 'qa', 'math'])
  assert '| math | 2 | 1.00 | 2.33 |' in table and '| all | 3 | 1.00 | 1.57 |' in table


def test_poisson_arrivals_are_seeded_and_have_the_rate():
  a = poisson_arrivals(4000, 5.0, seed=3)
  assert a == poisson_arrivals(4000, 5.0, seed=3) and a != poisson_arrivals(4000, 5.0, seed=4)
  assert np.all(np.diff(a) > 0) and a[0] > 0
  assert abs(np.mean(np.diff(a)) - 0.2) < 0.02


def test_stats():
  assert spread([3.0, 1.0, None, 2.0]) == {'median': 2.0, 'min': 1.0, 'max': 3.0, 'n': 3}
  assert spread([None]) is None
  assert percentile([1, 2, 3, 4, 5], 50) == 3 and percentile([1, 2], 90) == pytest.approx(1.9)


def test_settings_put_ar_first_and_check_values():
  assert BenchSettings(modes=('apar', 'ar', 'lookup')).engine_modes() == ('ar', 'apar', 'lookup')
  with pytest.raises(ValueError, match='repeats'):
    BenchSettings(repeats=0)


class _Fake:
  """A contender answering in `seconds` per token; raises on prompt `fail_at`."""
  kind = 'engine'

  def __init__(self, name, seconds, fail_at=None):
    self.name, self.seconds, self.fail_at = name, seconds, fail_at

  def setup(self):
    return 0.5

  def run(self, ids, max_new):
    if ids[0] == self.fail_at:
      raise RuntimeError('boom')
    return Sample(token_ids=list(ids), num_tokens=4, decode_steps=4, wall_s=4 * self.seconds)

  def first_token_s(self, ids):
    return self.seconds

  def describe(self):
    return {}


def test_a_mode_failing_mid_run_is_reported_and_the_others_finish():
  prompts = [[1], [2], [3]]
  runs = run_latency([_Fake('ar', 0.01), _Fake('bad', 0.01, fail_at=2), _Fake('ok', 0.02)],
                     prompts, 4, repeats=2, progress=False)
  ar, bad, ok = runs
  assert bad.status == 'failed' and 'prompt 1' in bad.reason and 'boom' in bad.reason
  assert [len(r) for r in ar.samples] == [3, 3] and [len(r) for r in ok.samples] == [3, 3]
  kinds = ['list', 'plain', 'plain']
  assert summarize(bad, ar, kinds, None)['tokens_per_s'] is None


def _run(name, seconds_per_rep):
  run = ContenderRun(name, 'engine')
  run.samples = [[Sample([1] * 4, 4, 4, 4 * s, ttft_s=s)] for s in seconds_per_rep]
  return run


def test_speedup_is_a_ratio_of_measured_runs():
  ar, fast = _run('ar', [0.1, 0.2]), _run('x', [0.05, 0.05])
  assert summarize(ar, ar, ['plain'], None)['speedup_vs_ar']['median'] == 1.0
  assert summarize(fast, ar, ['plain'], None)['speedup_vs_ar'] == {
      'median': 3.0, 'min': 2.0, 'max': 4.0, 'n': 2}  # per repetition: 0.1/0.05, 0.2/0.05
  assert summarize(ar, fast, ['plain'], None)['speedup_vs_ar']['median'] == pytest.approx(0.375)
  entry = summarize(fast, None, ['plain'], 0.01)
  assert entry['speedup_vs_ar'] is None and entry['step_ms']['median'] == pytest.approx(50.0)
  assert entry['step_vs_roofline'] == pytest.approx(5.0)
