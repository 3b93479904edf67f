"""Only the answers distilled with given settings (`train.list_answers_where`: list answers;
`drafter.data_where`: every record).

    where = parse_where('temperature=0,repetition_penalty=1')   # {'temperature': '0', ...}
    records, left_out = list_answers_where(records, where)
    matches(record, parse_where('temperature=0,kind=plain'))           # any record, `kind` too

A distilled record keeps the settings its answer was drawn with (`temperature`, `top_p`, `top_k`,
`repetition_penalty`, `no_repeat_ngram`, `penalize_symbols`, `list_demo`). List-request records
that lack a field or hold another value are left out, kept or not (before the budget salvage, as
with `train.list_demo_only`); records of other kinds and of other files (no `kind`) pass through.
`matches` tests one record of any kind (`drafter.data_where` keeps the records it holds for).
Numbers compare as numbers ('1' matches 1.0), booleans as 'true' / 'false'.
"""

from typing import Any, Callable, Sequence


def parse_where(text: str, option: str = 'train.list_answers_where') -> dict[str, str]:
  """'field=value,field=value' -> {field: value}; '' -> {} (no condition). `option` names the
  setting in the error."""
  where: dict[str, str] = {}
  for pair in (p.strip() for p in text.split(',') if p.strip()):
    field, sep, value = pair.partition('=')
    if not sep or not field.strip() or not value.strip():
      raise ValueError(f'{option}: {pair!r} is not field=value (e.g. '
                       "'temperature=0,repetition_penalty=1')")
    where[field.strip()] = value.strip()
  return where


def _equal(held: Any, wanted: str) -> bool:
  if isinstance(held, bool):
    return wanted.lower() == str(held).lower()
  if isinstance(held, (int, float)):
    try:
      return float(wanted) == float(held)
    except ValueError:
      return False
  return held is not None and str(held) == wanted


def without_list_answers(records: Sequence[dict[str, Any]],
                         unwanted: Callable[[dict[str, Any]], bool]
                         ) -> tuple[list[dict[str, Any]], int]:
  """(the records less the list-request ones `unwanted` holds for; how many went). Records of
  other kinds, and of other files (no `kind`), stay."""
  kept = [r for r in records if not (r.get('kind') == 'list' and unwanted(r))]
  return kept, len(records) - len(kept)


def matches(record: dict[str, Any], where: dict[str, str]) -> bool:
  """Whether the record holds every field of `where` with that value."""
  return all(_equal(record.get(field), wanted) for field, wanted in where.items())


def list_answers_where(records: Sequence[dict[str, Any]], where: dict[str, str]
                       ) -> tuple[list[dict[str, Any]], int]:
  """(the records without the list answers whose settings differ from `where`; how many went)."""
  return without_list_answers(records, lambda r: not matches(r, where))
