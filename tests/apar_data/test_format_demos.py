"""The teacher's format demonstrations: each is an answer the filters keep as a list tree."""

import re

import pytest

from apar_jax.apar_data.answer_quality import list_items
from apar_jax.apar_data.distill_filter import judge
from apar_jax.apar_data.format_demos import DEMOS, demo_turns


@pytest.mark.parametrize('name', sorted(DEMOS))
def test_every_demo_is_a_list_tree_the_filters_keep(name):
  user, assistant = demo_turns(name)
  assert (user['role'], assistant['role']) == ('user', 'assistant')
  verdict = judge(assistant['content'], True, 'list')
  assert (verdict.kept, verdict.tree_kind) == (True, 'list')


@pytest.mark.parametrize('name', ['counted_titles', 'counted_details'])
def test_the_counted_demos_announce_as_many_items_as_they_write(name):
  answer = demo_turns(name)[1]['content']
  announced = int(re.match(r'Here are (\d+) ', answer).group(1))
  assert announced == len(list_items(answer)) == 4
  titles = re.findall(r'\*\*(.+?)\*\*', answer)
  assert titles == re.findall(r'\*\*(.+?)\*\*', demo_turns('bold_titles')[1]['content'])
  if name == 'counted_titles':
    assert answer.endswith(demo_turns('bold_titles')[1]['content'])  # the same items


def test_the_detailed_demo_writes_two_sentences_per_item():
  details = [line.split('**: ', 1)[1] for line in
             demo_turns('counted_details')[1]['content'].splitlines() if '**: ' in line]
  assert len(details) == 4
  assert all(len(re.findall(r'[.!?](?:\s|$)', d)) == 2 for d in details)


def test_no_demo_and_an_unknown_one():
  assert demo_turns('') == []
  names = "\\['bold_titles', 'counted_details', 'counted_titles'\\]"
  with pytest.raises(ValueError, match=f'choose one of {names}'):
    demo_turns('bold')
