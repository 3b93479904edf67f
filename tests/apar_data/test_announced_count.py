"""`train.list_answers_counted`: list answers not writing the count they announce are left out."""

import json

import pytest

from apar_jax.apar_data.announced_count import (announced_count, counted_list_answers,
                                                keeps_its_count)
from apar_jax.apar_data.dataset import build_rows

ITEMS = ('1. **Water**: Give the plant water once a week, a little more in summer.\n\n'
         '2. **Light**: Put it near a bright window that gets morning sun.\n\n'
         '3. **Soil**: Use a light potting mix that drains well after watering.\n\nEnjoy!')
PLAIN = 'Ferns like shade and moist soil, so a bathroom window is a good place for one.'


@pytest.mark.parametrize('lead, count', [
    ('Here are 3 tips for ferns:', 3),
    ('Here are three tips for ferns:', 3),
    ('Here Are Twelve ways:', 12),
    ('These 10 tips suit a 2-year-old fern:', 10),   # the first number is the count
    ("Here's how to care for ferns:", None),
    ('To keep a fern green, follow these steps:', None),
    ('1. **Water**: 3 times a week.', None),           # the answer opens with its list
    ('- Water 3 times a week.', None),
    ('In 2020 a friend gave me these tips:', None),     # a year is not a count
])
def test_announced_count_reads_the_first_line(lead, count):
  assert announced_count(f'{lead}\n\n{ITEMS}') == count


def test_keeps_its_count_compares_with_the_items_written():
  assert keeps_its_count(f'Here are 3 tips:\n\n{ITEMS}')
  assert keeps_its_count(f'  Here are three tips:\n\n{ITEMS}')
  assert not keeps_its_count(f'Here are 4 tips:\n\n{ITEMS}')
  assert not keeps_its_count(f'Here are some tips:\n\n{ITEMS}')
  assert not keeps_its_count('')


def _record(request: str, answer: str, kind: str = 'list', finished: bool = True) -> dict:
  return {'id': request, 'conversations': [{'from': 'human', 'value': f'Tips for {request}?'},
                                           {'from': 'gpt', 'value': answer}],
          'kind': kind, 'finished': finished, 'kept': True, 'drop_reason': '',
          'tree_kind': 'list' if kind == 'list' else ''}


def test_counted_list_answers_leaves_out_list_answers_only():
  records = [_record('ferns', f'Here are 3 tips:\n\n{ITEMS}'),
             _record('cacti', f'Here are 5 tips:\n\n{ITEMS}'),                 # says 5, writes 3
             _record('ivy', f'Some tips:\n\n{ITEMS}'),                         # no count
             _record('palms', f'Here are 3 tips:\n\n{ITEMS}', finished=False),  # budget cut
             _record('moss', PLAIN, kind='plain'),                             # not a list request
             {'id': 'x', 'conversations': [{'from': 'human', 'value': 'Hi'},
                                           {'from': 'gpt', 'value': 'Hello'}]}]  # another file
  kept, left_out = counted_list_answers(records)
  assert ([r['id'] for r in kept], left_out) == (['ferns', 'moss', 'x'], 3)


def test_build_rows_reports_and_explains_what_was_left_out(tmp_path, load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  tokenizer = load_tokenizer_from_config(load_config('tiny'))
  path = tmp_path / 'distilled.jsonl'

  def build(records, counted=True):
    path.write_text(''.join(json.dumps(r) + '\n' for r in records))
    return build_rows(str(path), tokenizer, chat_template='chatml', system_prompt=None,
                      layout='packed', plain_fraction=0.0, seq_len=256, max_branches=8, seed=0,
                      list_answers_counted=counted)[1]

  records = [_record('ferns', f'Here are 3 tips:\n\n{ITEMS}'),
             _record('ivy', f'Some tips:\n\n{ITEMS}'), _record('moss', PLAIN, kind='plain')]
  stats = build(records, counted=False)
  assert (stats.trees, stats.uncounted) == (2, 0)
  stats = build(records)
  assert (stats.trees, stats.plain, stats.uncounted) == (1, 1, 1)
  assert stats.summary().startswith('left out 1 list answers that do not write the number of '
                                    'items they announce; ')
  with pytest.raises(ValueError, match='1 list answers that do not write the number of items they '
                                       'announce are left out: set '
                                       '--config.train.list_answers_counted=False'):
    build(records[1:2])
