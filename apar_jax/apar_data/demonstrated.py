"""Only the list answers distilled after a format demonstration (`distill.list_demo`).

    records, left_out = demonstrated_list_answers(records)

A distilled record of request kind 'list' carries the demonstration its teacher saw in
`list_demo` ('' or absent: none). With `train.list_demo_only` the list answers written without one
are left out, kept or not, so the budget salvage that runs next cannot bring them back either.
Records of other kinds, and records of other files (no `kind`), pass through unchanged.
"""

from typing import Any, Sequence


def _undemonstrated_list_answer(record: dict[str, Any]) -> bool:
  return record.get('kind') == 'list' and not record.get('list_demo')


def demonstrated_list_answers(records: Sequence[dict[str, Any]]
                              ) -> tuple[list[dict[str, Any]], int]:
  """(the records without the list answers distilled with no demonstration, how many left out)."""
  kept = [r for r in records if not _undemonstrated_list_answer(r)]
  return kept, len(records) - len(kept)
