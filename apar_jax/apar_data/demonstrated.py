"""Only the list answers distilled after a format demonstration (`distill.list_demo`).

    records, left_out = demonstrated_list_answers(records, name='')

A distilled record of request kind 'list' carries the demonstration its teacher saw in
`list_demo` ('' or absent: none). With `train.list_demo_only` the list answers written without one
(or, with `train.list_demo_name`, without that one) are left out, kept or not, so the budget
salvage that runs next cannot bring them back either. Records of other kinds, and records of other
files (no `kind`), pass through unchanged.
"""

from typing import Any, Sequence

from apar_jax.apar_data.record_where import without_list_answers


def demonstrated_list_answers(records: Sequence[dict[str, Any]], name: str = ''
                              ) -> tuple[list[dict[str, Any]], int]:
  """(the records without the list answers distilled with no demonstration, or another one than
  `name` when it is given; how many were left out)."""
  def unwanted(record: dict[str, Any]) -> bool:
    demo = record.get('list_demo') or ''
    return not demo or bool(name) and demo != name
  return without_list_answers(records, unwanted)
