"""The report of one tiny-model run: every field for every mode, computed speed-ups, failures."""

import json

from apar_jax.bench.metrics import MODE_FIELDS
from apar_jax.bench.serving import SERVING_FIELDS
from bench_testlib import BUDGET, PROMPTS

# Figures every successful contender has (paged-cache figures only for engine modes).
ALWAYS = ('generated_tokens', 'decode_steps', 'steps_per_token', 'mean_accepted_tokens',
          'tokens_per_s', 'speedup_vs_ar', 'ttft_ms', 'step_ms', 'roofline_step_ms',
          'step_vs_roofline', 'forks', 'max_live_branches', 'same_tokens_as_ar', 'compile_s',
          'by_kind', 'per_prompt')
ENGINE_ONLY = ('peak_kv_pages', 'attended_kv_tokens_per_step')


def _modes(report):
  return {m['name']: m for m in report['modes']}


def test_every_mode_has_every_field(report):
  modes = _modes(report)
  assert list(modes)[:3] == ['ar', 'apar', 'no_such_mode']  # ar added first: the baseline
  assert {'hf_generate', 'hf_prompt_lookup'} <= set(modes)
  for name, m in modes.items():
    assert set(MODE_FIELDS) <= set(m), name
    if m['status'] != 'ok':
      continue
    for field in ALWAYS + (ENGINE_ONLY if m['kind'] == 'engine' else ()):
      assert m[field] is not None, (name, field)
    assert m['prompts'] == len(PROMPTS) and len(m['per_prompt']) == len(PROMPTS)
    assert set(m['by_kind']) == {'list', 'paragraph', 'plain'}
    assert m['tokens_per_s']['n'] == 2  # one figure per repetition
    assert m['tokens_per_s']['min'] <= m['tokens_per_s']['median'] <= m['tokens_per_s']['max']
    assert 0 < m['generated_tokens'] <= 6 * len(PROMPTS)
  json.dumps(report)  # serialisable as it is


def test_ar_speedup_is_measured_and_one(report):
  ar = _modes(report)['ar']
  assert ar['status'] == 'ok'
  assert ar['speedup_vs_ar'] == {'median': 1.0, 'min': 1.0, 'max': 1.0, 'n': 2}
  assert ar['same_tokens_as_ar'] == 1.0 and ar['steps_per_token'] == 1.0
  apar = _modes(report)['apar']
  assert apar['status'] == 'ok' and apar['speedup_vs_ar']['n'] == 2
  assert apar['speedup_vs_ar']['median'] != 1.0  # a real ratio of two timings


def test_greedy_modes_and_peers_agree_with_ar(report):
  """Same weights, greedy: the random tiny model never forks, so every contender says the same."""
  for name, m in _modes(report).items():
    if m['status'] == 'ok':
      assert m['same_tokens_as_ar'] == 1.0, name


def test_failed_mode_is_reported_and_the_others_run(report):
  modes = _modes(report)
  bad = modes['no_such_mode']
  assert bad['status'] == 'failed' and 'unknown engine mode' in bad['reason']
  assert bad['tokens_per_s'] is None and bad['speedup_vs_ar'] is None
  assert modes['ar']['status'] == modes['apar']['status'] == 'ok'
  assert report['serving']['no_such_mode']['status'] == 'failed'


def test_serving_report(report, bench_settings):
  serving = report['serving']
  assert list(serving) == ['ar', 'apar', 'no_such_mode']
  for mode, s in serving.items():
    assert set(SERVING_FIELDS) <= set(s), mode
  for mode in ('ar', 'apar'):
    s = serving[mode]
    assert s['status'] == 'ok' and s['completed'] == s['requests'] == 5
    lat = s['latency_s']
    assert 0 < lat['p50'] <= lat['p90'] <= lat['p99']
    assert s['throughput_tps']['n'] == 2  # two interleaved loads
    assert s['throughput_tps']['median'] > 0 and s['ttft_s']['p50'] > 0
    assert 0 < s['peak_kv_pages'] <= BUDGET and s['page_budget'] == BUDGET
    assert s['timeline'] and all(p['pages'] <= BUDGET for p in s['timeline'])
    assert s['capacities']['num_pages'] == BUDGET
  assert serving['ar']['throughput_vs_ar']['median'] == 1.0


def test_roofline_and_meta(report):
  roof = report['roofline']
  assert roof['bandwidth_gbps'] == max(roof['bandwidth_samples_gbps']) > 0
  assert len(roof['bandwidth_samples_gbps']) == 2  # start and end of the run
  assert roof['weight_bytes'] > 0 and roof['step_ms'] > 0
  assert report['meta']['total_wall_s'] > 0 and report['meta']['config'] == 'tiny'
  assert [p['kind'] for p in report['prompts']] == [p['kind'] for p in PROMPTS]


def test_branch_timeline_falls_back_to_the_forky_model(report):
  t = report['timeline']
  assert t['status'] == 'ok' and t['fallback'] and 'tiny' in t['source']
  assert t['forks'] > 0 and len(t['branches']) == t['forks'] + 1
  by_id = {b['branch']: b for b in t['branches']}
  emitted = sum(len(b['steps']) for b in t['branches'])
  assert emitted >= t['generated_tokens']  # + the [Fork]s and stops
  for b in t['branches']:
    assert b['steps'] == sorted(set(b['steps'])) and max(b['steps']) < t['steps']
    if b['parent'] >= 0:  # a child starts after its parent wrote the [Fork]
      assert min(b['steps']) > min(by_id[b['parent']]['fork_steps'])
