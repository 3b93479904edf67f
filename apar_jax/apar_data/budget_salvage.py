"""Distilled answers dropped only for the token budget, cut to complete blocks and judged again.

    records, salvaged = salvage_budget_cuts(records)

The distillation drops an answer that hit its token budget ('budget'), however good the blocks
before the cut are. For a request none of whose answers was kept, the first such answer whose text
up to its last blank line (`sharegpt.trim_to_last_block`: whole list items, whole paragraphs)
passes every other filter (`distill_filter.judge` as if it had finished) comes back marked kept
(`"salvaged": "budget"`), still `"finished": false`: the reader trims it with
`unfinished='trim'`, so training sees exactly the text that was judged. Records of other files
(no `drop_reason`) and every other record pass through unchanged.
"""

from typing import Any, Optional, Sequence

from apar_jax.apar_data.distill_filter import REQUEST_KINDS, judge
from apar_jax.apar_data.sharegpt import last_answer, trim_to_last_block


def _salvage(record: dict[str, Any]) -> Optional[dict[str, Any]]:
  """A kept copy of a budget-cut record whose complete blocks pass the filters, else None."""
  if record.get('kept') is not False or record.get('drop_reason') != 'budget':
    return None
  if record.get('kind') not in REQUEST_KINDS:
    return None
  trimmed = trim_to_last_block(last_answer(record))
  if not trimmed:
    return None
  verdict = judge(trimmed, finished=True, kind=record['kind'])
  if not verdict.kept:
    return None
  return {**record, 'kept': True, 'drop_reason': '', 'tree_kind': verdict.tree_kind,
          'finished': False, 'salvaged': 'budget'}


def salvage_budget_cuts(records: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
  """(the records with at most one budget-cut answer per unanswered request kept, how many)."""
  answered = {r.get('id') for r in records if r.get('kept') is True}
  out, salvaged_ids = [], set()
  for record in records:
    request = record.get('id')
    rescued = None
    if request is not None and request not in answered and request not in salvaged_ids:
      rescued = _salvage(record)
    if rescued is not None:
      salvaged_ids.add(request)
    out.append(rescued if rescued is not None else record)
  return out, len(salvaged_ids)
