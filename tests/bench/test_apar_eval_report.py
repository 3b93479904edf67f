"""The APAR evaluation's requests file, per-answer signals, side-by-side summary and table."""

import dataclasses
import json

import pytest

from apar_jax.bench.apar_eval_report import (answer_row, hit_budget, nll_without_loops, report,
                                             summarise)
from apar_jax.bench.eval_requests import EvalRequest, read_prompts_file

STOP = 2
GOOD = ('Try these:\n\n1. **Water**: Water it once a week.\n2. **Light**: Put it near a bright '
        'window.\n3. **Soil**: Use a light potting mix.')
BAD = ('Try these:\n\n1. **Water**: Water it.\n2. **Water**: Water it once a week, or more.\n'
       '3. **Light**:')


def _record(text, steps, forks, finished=True, branch_cut=False):
  ids = [5, 6, 7] + ([STOP] if finished else [])
  branches = [dict(tokens=ids)] + [dict(tokens=[8, 9] + ([] if branch_cut else [STOP]))] * forks
  return dict(text=text, token_ids=ids, num_generated_tokens=10 + 2 * forks, decode_steps=steps,
              forks=forks, branches=branches)


def test_prompts_file_text_and_jsonl(tmp_path):
  txt = tmp_path / 'r.txt'
  txt.write_text('How do I start running?\n\n  Give me 5 tips for sleep.  \n')
  got = read_prompts_file(str(txt))
  assert [(r.kind, r.text) for r in got] == [('list', 'How do I start running?'),
                                              ('list', 'Give me 5 tips for sleep.')]
  jsonl = tmp_path / 'r.jsonl'
  jsonl.write_text(json.dumps(dict(prompt='List ways to save water.')) + '\n' +
                   json.dumps(dict(prompt='What is a kayak?', kind='plain', id='k1')) + '\n')
  got = read_prompts_file(str(jsonl))
  assert [(r.kind, r.text) for r in got] == [('list', 'List ways to save water.'),
                                              ('plain', 'What is a kayak?')]
  assert got[1].id == 'k1'


@pytest.mark.parametrize('content, match', [
    ('{"prompt": "a"}\nnot json\n', r'r.jsonl:2: not JSON'),
    ('{"text": "a"}\n', r'r.jsonl:1: needs a "prompt"'),
    ('{"prompt": "a", "kind": "poem"}\n', 'kind must be one of'),
    ('{"prompt": "a"}\n{"prompt": "a"}\n', 'repeats a request'),
    ('\n\n', 'holds no request'),
])
def test_prompts_file_errors_name_the_line(tmp_path, content, match):
  path = tmp_path / 'r.jsonl'
  path.write_text(content)
  with pytest.raises(ValueError, match=match):
    read_prompts_file(str(path))
  with pytest.raises(FileNotFoundError, match='does not exist'):
    read_prompts_file(str(tmp_path / 'missing.txt'))


def test_answer_rows_count_each_signal_both_ways():
  req = EvalRequest('a', 'list', 'q')
  good = answer_row(req, _record(GOOD, 8, 3), [STOP])
  bad = answer_row(req, _record(BAD, 10, 0, finished=False), [STOP])
  assert (good.items, good.duplicate_titles, good.empty_details, good.has_loop) == (3, 0, 0, False)
  assert good.finished and not good.hit_budget and good.forks == 3 and good.tokens == 16
  # Cut by the budget: the last, empty item is exempt; the short first one and the repeat are not.
  assert (bad.items, bad.duplicate_titles, bad.empty_details) == (3, 1, 1)
  assert not bad.finished and bad.hit_budget
  assert hit_budget(_record(GOOD, 8, 2, branch_cut=True), [STOP])  # a child ran out of tokens
  assert not hit_budget(_record(GOOD, 8, 2), [STOP])


def test_a_locked_list_is_counted():
  locked = '\n'.join(f'{n}. **Water**: Water it once a week.' for n in range(1, 6))
  row = answer_row(EvalRequest('a', 'list', 'q'), _record(locked, 8, 5), [STOP])
  assert row.locked and not answer_row(EvalRequest('b', 'list', 'q'), _record(GOOD, 8, 3),
                                       [STOP]).locked
  s = summarise(_rows([(GOOD, 6, 3)]) + [row], _rows([(GOOD, 10, 0)] * 2),
                apar_answer_nll=2.0, base_answer_nll=2.0, plain_nll=None)
  assert (s['apar']['locked_lists'], s['base']['locked_lists']) == (1, 0)
  assert s['apar']['median_forks'] == 4  # of the answers that fork: 3 and 5


def _rows(texts_steps_forks, kind='list'):
  return [answer_row(EvalRequest(str(i), kind, 'q'), _record(t, s, f), [STOP])
          for i, (t, s, f) in enumerate(texts_steps_forks)]


def test_summary_compares_both_models_and_checks_the_targets():
  apar = _rows([(GOOD, 6, 3), (GOOD, 8, 3)]) + _rows([(GOOD, 10, 0)], kind='plain')
  base = _rows([(BAD, 10, 0), (GOOD, 10, 0)]) + _rows([(GOOD, 10, 0)], kind='plain')
  s = summarise(apar, base, apar_answer_nll=2.1, base_answer_nll=2.0, plain_nll=(1.0, 1.02))
  assert s['apar']['list_fork_rate'] == 1.0 and s['apar']['plain_no_fork_rate'] == 1.0
  assert s['apar']['steps_per_token'] == 14 / 32 and s['base']['steps_per_token'] == 20 / 20
  assert s['base']['duplicate_titles'] == 1 and s['apar']['duplicate_titles'] == 0
  assert all(s['checks'].values())
  table = report(s)
  assert 'NOT met' not in table
  row = '| duplicate item titles (per 1,000 tokens) | 0 (0.0) | 1 (50.0) | <= base | met |'
  assert row in table
  assert s['base']['duplicate_titles_per_1k'] == 1000 / 20
  assert (s['apar']['median_forks'], s['base']['median_forks']) == (3, 0)
  forking = '| list requests forking | 100% of 2 (mean 3.0 forks; median 3 per forking answer) |'
  assert forking in table
  assert '| lists that repeat one title 5+ times | 0 | 0 |' in table
  # And the other way: the fine-tune worse than the base model, too few forks, a worse NLL.
  s = summarise(base, apar, apar_answer_nll=2.5, base_answer_nll=2.0, plain_nll=(1.0, 1.2))
  assert not any(s['checks'][k] for k in ('list_fork_rate', 'steps_per_token', 'duplicate_titles',
                                          'empty_details', 'answer_nll_ratio', 'plain_nll_ratio'))
  assert report(s).count('NOT met') == 6


def test_nll_without_loops_leaves_out_loops_and_budget_cuts():
  rows = _rows([(GOOD, 6, 3), (GOOD, 8, 3), (GOOD, 8, 3)])
  rows[1] = dataclasses.replace(rows[1], has_loop=True)
  rows[2] = dataclasses.replace(rows[2], hit_budget=True)
  assert nll_without_loops(rows, [3.0, 100.0, 100.0], [2.0, 10.0, 10.0]) == (1.5, 1)
  assert nll_without_loops(rows[1:], [1.0, 1.0], [1.0, 1.0]) == (None, 0)
  s = summarise(rows, rows, apar_answer_nll=2.0, base_answer_nll=2.0, plain_nll=None,
                clean_nll=dict(apar=(1.5, 1), base=(None, 0)))
  row = '| ... of the answers without a loop or budget cut (answers) | 1.5000 (1) | - (0) |  |  |'
  assert row in report(s)
  assert 'without a loop' not in report(summarise(rows, rows, apar_answer_nll=2.0,
                                                  base_answer_nll=2.0, plain_nll=None))
