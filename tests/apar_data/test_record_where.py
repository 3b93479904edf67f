"""`train.list_answers_where`: list answers distilled with other settings are left out."""

import json

import pytest

from apar_jax.apar_data.dataset import build_rows
from apar_jax.apar_data.record_where import list_answers_where, parse_where

ITEMS = ('1. **Water**: Give the plant water once a week, a little more in summer.\n\n'
         '2. **Light**: Put it near a bright window that gets morning sun.\n\n'
         '3. **Soil**: Use a light potting mix that drains well after watering.\n\nEnjoy!')
PLAIN = 'Ferns like shade and moist soil, so a bathroom window is a good place for one.'


def _record(request: str, answer: str = ITEMS, kind: str = 'list', **settings) -> dict:
  return {'id': request, 'conversations': [{'from': 'human', 'value': f'Tips for {request}?'},
                                           {'from': 'gpt', 'value': answer}],
          'kind': kind, 'finished': True, 'kept': True, 'drop_reason': '',
          'tree_kind': 'list' if kind == 'list' else '', **settings}


def test_parse_where():
  assert parse_where('') == {}
  assert parse_where(' temperature=0 , list_demo=counted_titles ') == {
      'temperature': '0', 'list_demo': 'counted_titles'}
  for bad in ('temperature', 'temperature=', '=0', 'temperature=0,top_p'):
    with pytest.raises(ValueError, match='is not field=value'):
      parse_where(bad)


def test_list_answers_with_other_settings_are_left_out():
  records = [_record('ferns', temperature=0.0, repetition_penalty=1.0, penalize_symbols=False),
             _record('cacti', temperature=0.7, repetition_penalty=1.0),       # other value: out
             _record('ivy', repetition_penalty=1.0),                           # no field: out
             _record('moss', PLAIN, kind='plain', temperature=0.7),           # not a list answer
             {'id': 'x', 'conversations': [{'from': 'human', 'value': 'Hi'},
                                           {'from': 'gpt', 'value': 'Hello'}]}]  # another file
  kept, left_out = list_answers_where(records, parse_where('temperature=0,repetition_penalty=1'))
  assert ([r['id'] for r in kept], left_out) == (['ferns', 'moss', 'x'], 2)
  kept, _ = list_answers_where(records, parse_where('penalize_symbols=false'))
  assert [r['id'] for r in kept] == ['ferns', 'moss', 'x']
  kept, _ = list_answers_where(records, parse_where('temperature=cold'))  # no number: no match
  assert [r['id'] for r in kept] == ['moss', 'x']


def test_build_rows_reports_and_explains_what_was_left_out(tmp_path, load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  tokenizer = load_tokenizer_from_config(load_config('tiny'))
  path = tmp_path / 'distilled.jsonl'
  records = [_record('ferns', temperature=0.0), _record('cacti', temperature=0.7),
             _record('moss', PLAIN, kind='plain')]
  path.write_text(''.join(json.dumps(r) + '\n' for r in records))

  def build(where, keep=None):
    if keep is not None:
      path.write_text(''.join(json.dumps(r) + '\n' for r in keep))
    return build_rows(str(path), tokenizer, chat_template='chatml', system_prompt=None,
                      layout='packed', plain_fraction=0.0, seq_len=256, max_branches=8, seed=0,
                      list_answers_where=where)[1]

  assert (build('').trees, build('').unmatched) == (2, '')
  stats = build('temperature=0')
  assert (stats.trees, stats.plain) == (1, 1)
  assert stats.summary().startswith('left out 1 list answers not distilled with temperature=0; ')
  with pytest.raises(ValueError, match="2 list answers not distilled with top_k=3 are left out: "
                                       'check the fields'):
    build('top_k=3', keep=records[:2])
  with pytest.raises(ValueError, match='is not field=value'):
    build('temperature')
