"""Budget-cut distilled answers: salvaged only when their complete blocks pass every filter."""

import json

import pytest

from apar_jax.apar_data.budget_salvage import salvage_budget_cuts
from apar_jax.apar_data.dataset import build_rows
from apar_jax.apar_data.distill_filter import judge
from apar_jax.apar_data.sharegpt import exchanges, trim_to_last_block

ITEMS = ('1. **Water**: Give the plant water once a week, a little more in summer.\n\n'
         '2. **Light**: Put it near a bright window that gets morning sun.\n\n'
         '3. **Soil**: Use a light potting mix that drains well after watering.\n\n')
CUT = ITEMS + '4. **Pot**: Choose a pot with a hole in'  # the budget ended mid-item
DUPLICATE = ITEMS.replace('**Soil**', '**Water**') + '4. **Pot**: Choose a'


def _record(request: str, answer: str, *, kept: bool, reason: str = '', attempt: int = 0,
            kind: str = 'list') -> dict:
  return {'id': request, 'conversations': [{'from': 'human', 'value': f'Tips for {request}?'},
                                           {'from': 'gpt', 'value': answer}],
          'kind': kind, 'finished': reason != 'budget', 'attempt': attempt, 'kept': kept,
          'drop_reason': reason, 'tree_kind': 'list' if kept else ''}


def test_a_cut_list_comes_back_as_the_text_that_was_judged():
  records, salvaged = salvage_budget_cuts([_record('ferns', CUT, kept=False, reason='budget')])
  assert salvaged == 1
  (record,) = records
  assert (record['kept'], record['salvaged'], record['finished']) == (True, 'budget', False)
  (exchange,) = exchanges(records, unfinished='trim')
  assert exchange.answer == ITEMS.rstrip() == trim_to_last_block(CUT)
  assert judge(exchange.answer, True, 'list').tree_kind == 'list'
  assert list(exchanges(records, unfinished='drop')) == []  # still an unfinished answer


def test_only_requests_without_a_kept_answer_and_only_one_answer_each():
  records = [
      _record('ferns', CUT, kept=False, reason='budget'),           # another attempt was kept
      _record('ferns', ITEMS + 'Enjoy!', kept=True, attempt=1),
      _record('cacti', CUT, kept=False, reason='budget'),           # salvaged
      _record('cacti', CUT, kept=False, reason='budget', attempt=1),  # one per request
      _record('orchids', DUPLICATE, kept=False, reason='budget'),   # its blocks fail a filter
      _record('moss', CUT, kept=False, reason='4gram_loop'),        # not a budget drop
      {'id': 'x', 'conversations': [{'from': 'human', 'value': 'Hi'},
                                    {'from': 'gpt', 'value': 'Hello'}]},  # not distilled
  ]
  out, salvaged = salvage_budget_cuts(records)
  assert salvaged == 1
  assert [r.get('salvaged', '') for r in out] == ['', '', 'budget', '', '', '', '']
  assert out[4]['kept'] is False and out[6] == records[6]


def test_build_rows_counts_the_salvaged_trees(tmp_path, load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  tokenizer = load_tokenizer_from_config(load_config('tiny'))
  path = tmp_path / 'distilled.jsonl'
  records = [_record('ferns', ITEMS + 'Enjoy!', kept=True),
             _record('cacti', CUT, kept=False, reason='budget')]
  path.write_text(''.join(json.dumps(r) + '\n' for r in records))

  def build(salvage, unfinished='trim'):
    return build_rows(str(path), tokenizer, chat_template='chatml', system_prompt=None,
                      layout='packed', plain_fraction=0.0, seq_len=256, max_branches=8, seed=0,
                      unfinished=unfinished, salvage_budget_cuts=salvage)[1]

  assert build(False).trees == 1
  stats = build(True)
  assert (stats.trees, stats.salvaged) == (2, 1)
  assert '1 salvaged from budget cuts' in stats.summary()
  with pytest.raises(ValueError, match="unfinished='trim'"):
    build(True, unfinished='drop')
