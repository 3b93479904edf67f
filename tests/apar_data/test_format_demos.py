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


def test_the_counted_demo_announces_as_many_items_as_it_writes():
  answer = demo_turns('counted_titles')[1]['content']
  announced = int(re.match(r'Here are (\d+) ', answer).group(1))
  assert announced == len(list_items(answer)) == 4
  assert answer.endswith(demo_turns('bold_titles')[1]['content'])  # the same items


def test_no_demo_and_an_unknown_one():
  assert demo_turns('') == []
  with pytest.raises(ValueError, match="choose one of \\['bold_titles', 'counted_titles'\\]"):
    demo_turns('bold')
