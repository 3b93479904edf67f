"""Only the list answers that say how many items follow and then write that many
(`train.list_answers_counted`).

    announced_count('Here are 5 tips for sleeping well:\n\n1. ...')   # 5
    keeps_its_count(answer)                                           # announced == items written
    records, left_out = counted_list_answers(records)

A root that has announced "Here are 5 steps" has a reason to stop after the fifth title; one that
opens "Here's a plan:" has none, and an APAR root that does not stop writes titles (and forks)
until the token budget. The count is the first number (digits, or a word up to twenty) on the
answer's first line, unless that line is already a list item; items are counted as the APAR
evaluation counts them (`answer_quality.list_items`). List-request records whose answer announces
no count, another count than it writes, or was cut by the token budget are left out (after the
budget salvage, so a salvaged answer goes too); records of other kinds and other files stay.
"""

import re
from typing import Any, Optional, Sequence

from apar_jax.apar_data.answer_quality import list_items
from apar_jax.apar_data.record_where import without_list_answers
from apar_jax.apar_data.sharegpt import last_answer

_NUMBER_WORDS = ('zero one two three four five six seven eight nine ten eleven twelve thirteen '
                 'fourteen fifteen sixteen seventeen eighteen nineteen twenty').split()
_NUMBER = re.compile(r'\b(\d{1,3}|' + '|'.join(_NUMBER_WORDS) + r')\b', re.I)


def announced_count(answer: str) -> Optional[int]:
  """The number of items the answer's first line announces; None if it announces none."""
  lead = answer.lstrip().split('\n', 1)[0]
  if list_items(lead):  # the answer opens with its list
    return None
  found = _NUMBER.search(lead)
  if found is None:
    return None
  word = found.group(1).lower()
  return int(word) if word.isdigit() else _NUMBER_WORDS.index(word)


def keeps_its_count(answer: str) -> bool:
  """True if the answer announces a count and writes exactly that many list items."""
  count = announced_count(answer)
  return count is not None and count == len(list_items(answer))


def counted_list_answers(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
  """(the records without the list answers that do not keep an announced count, or were cut by
  the token budget; how many were left out)."""
  return without_list_answers(records, lambda r: r.get('finished') is False
                              or not keeps_its_count(last_answer(r)))
