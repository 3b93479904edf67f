"""`train.list_demo_only`: list answers distilled without a format demonstration are left out."""

import json

import pytest

from apar_jax.apar_data.dataset import build_rows
from apar_jax.apar_data.demonstrated import demonstrated_list_answers

ITEMS = ('1. **Water**: Give the plant water once a week, a little more in summer.\n\n'
         '2. **Light**: Put it near a bright window that gets morning sun.\n\n'
         '3. **Soil**: Use a light potting mix that drains well after watering.\n\n')
CUT = ITEMS + '4. **Pot**: Choose a pot with a hole in'  # the budget ended mid-item
PLAIN = 'Ferns like shade and moist soil, so a bathroom window is a good place for one.'


def _record(request: str, answer: str, *, kind: str = 'list', demo: str = '', kept: bool = True,
            reason: str = '') -> dict:
  record = {'id': request, 'conversations': [{'from': 'human', 'value': f'Tips for {request}?'},
                                             {'from': 'gpt', 'value': answer}],
            'kind': kind, 'finished': reason != 'budget', 'kept': kept, 'drop_reason': reason,
            'tree_kind': 'list' if kept and kind == 'list' else ''}
  if demo:
    record['list_demo'] = demo
  return record


def test_only_list_answers_without_a_demo_are_left_out():
  records = [_record('ferns', ITEMS),                                 # left out
             _record('cacti', ITEMS, demo='bold_titles'),
             _record('moss', PLAIN, kind='plain'),
             _record('ivy', CUT, kept=False, reason='budget'),        # left out, kept or not
             {'id': 'x', 'conversations': [{'from': 'human', 'value': 'Hi'},
                                           {'from': 'gpt', 'value': 'Hello'}]}]  # another file
  kept, left_out = demonstrated_list_answers(records)
  assert left_out == 2
  assert [r['id'] for r in kept] == ['cacti', 'moss', 'x']


def test_a_name_keeps_that_demonstration_only():
  records = [_record('ferns', ITEMS, demo='bold_titles'), _record('cacti', ITEMS),
             _record('ivy', ITEMS, demo='counted_titles'), _record('moss', PLAIN, kind='plain')]
  kept, left_out = demonstrated_list_answers(records, name='counted_titles')
  assert ([r['id'] for r in kept], left_out) == (['ivy', 'moss'], 2)
  assert [r['id'] for r in demonstrated_list_answers(records)[0]] == ['ferns', 'ivy', 'moss']


def test_build_rows_trains_on_the_demonstrated_trees_and_salvages_after(tmp_path, load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  tokenizer = load_tokenizer_from_config(load_config('tiny'))
  path = tmp_path / 'distilled.jsonl'
  records = [_record('ferns', ITEMS + 'Enjoy!'),                       # no demo: out
             _record('ferns', CUT, demo='bold_titles', kept=False, reason='budget'),  # salvaged
             _record('cacti', ITEMS + 'Enjoy!', demo='bold_titles'),
             _record('moss', PLAIN, kind='plain')]
  path.write_text(''.join(json.dumps(r) + '\n' for r in records))

  def build(demo_only, demo_name=''):
    return build_rows(str(path), tokenizer, chat_template='chatml', system_prompt=None,
                      layout='packed', plain_fraction=0.0, seq_len=256, max_branches=8, seed=0,
                      unfinished='trim', salvage_budget_cuts=True, list_demo_only=demo_only,
                      list_demo_name=demo_name)[1]

  everything = build(False)
  assert (everything.trees, everything.salvaged, everything.undemonstrated) == (2, 0, 0)
  stats = build(True)  # the cut demo answer comes back once the undemonstrated one is gone
  assert (stats.trees, stats.plain, stats.salvaged, stats.undemonstrated) == (2, 1, 1, 1)
  assert stats.summary().startswith('left out 1 list answers distilled without the format '
                                    'demonstration; ')
  named = build(True, 'bold_titles')
  assert named.summary().startswith('left out 1 list answers distilled without the bold_titles '
                                    'demonstration; ')


@pytest.mark.parametrize('only, name, match', [
    (False, 'counted_titles', 'needs list_demo_only'),
    (True, 'counted', "unknown format demonstration 'counted'"),
])
def test_a_bad_demonstration_name_stops_before_reading(tmp_path, only, name, match):
  with pytest.raises(ValueError, match=match):
    build_rows(str(tmp_path / 'missing.jsonl'), None, chat_template='chatml', system_prompt=None,
               layout='packed', plain_fraction=0.0, seq_len=256, max_branches=8, seed=0,
               list_demo_only=only, list_demo_name=name)


def test_a_file_with_only_undemonstrated_list_answers_says_what_to_do(tmp_path, load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  tokenizer = load_tokenizer_from_config(load_config('tiny'))
  path = tmp_path / 'distilled.jsonl'
  path.write_text(json.dumps(_record('ferns', ITEMS)) + '\n')
  with pytest.raises(ValueError, match='list_demo_only=False'):
    build_rows(str(path), tokenizer, chat_template='chatml', system_prompt=None, layout='packed',
               plain_fraction=0.0, seq_len=256, max_branches=8, seed=0, list_demo_only=True)
