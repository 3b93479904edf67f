"""Reading and writing ShareGPT-format conversations (JSON list or JSONL).

    [{"id": "...", "conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]}]

A conversation yields one (prompt messages, answer) exchange per `gpt` turn: the turns before it (as
chat messages) and its text. `system` turns are kept as the leading system message. Records marked
`"finished": false` (answers the distiller cut at its token budget) are skipped, or with
`unfinished='trim'` cut back to their last blank line (the last complete paragraph or list item).
Records marked `"kept": false` (answers the distillation's filters dropped) are skipped.
"""

import dataclasses
import json
import os
from typing import Any, Iterable, Iterator

ROLES = {'human': 'user', 'user': 'user', 'gpt': 'assistant', 'assistant': 'assistant',
         'system': 'system'}


@dataclasses.dataclass(frozen=True)
class Exchange:
  """One answer in context: `messages` are chat messages ({'role', 'content'}) before `answer`."""
  conversation_id: str
  turn: int  # index of the answer among the conversation's gpt turns
  messages: tuple[dict[str, str], ...]
  answer: str


def _parse_json_or_jsonl(path: str) -> list[Any]:
  with open(path, encoding='utf-8') as f:
    text = f.read()
  if path.endswith('.jsonl'):
    records = []
    # JSONL lines end at '\n' only: str.splitlines() also cuts at U+2028, U+0085 and other
    # separators that json.dumps(..., ensure_ascii=False) leaves raw inside a string.
    for n, line in enumerate(text.split('\n'), 1):
      if line.strip():
        try:
          records.append(json.loads(line))
        except json.JSONDecodeError as e:
          raise ValueError(f'{path}:{n}: not valid JSON ({e}); expected one ShareGPT record per '
                           'line') from e
    return records
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'{path}: not valid JSON ({e}); ShareGPT data is a JSON list of records or a '
                     '.jsonl file with one record per line') from e
  if not isinstance(data, list):
    raise ValueError(f'{path}: expected a JSON list of ShareGPT records, got {type(data).__name__}')
  return data


def read_conversations(path: str) -> list[dict[str, Any]]:
  """The records of a ShareGPT .json or .jsonl file, checked."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'ShareGPT data file {path!r} does not exist')
  records = _parse_json_or_jsonl(path)
  for i, r in enumerate(records):
    convs = r.get('conversations') if isinstance(r, dict) else None
    if not isinstance(convs, list) or not all(
        isinstance(t, dict) and t.get('from') in ROLES and isinstance(t.get('value'), str)
        for t in convs):
      raise ValueError(f'{path}: record {i} is not ShareGPT: need {{"id", "conversations": '
                       f'[{{"from": "human"|"gpt", "value": str}}, ...]}}')
  return records


UNFINISHED = ('drop', 'trim')
MIN_TRIMMED_CHARS = 200


def last_answer(record: dict[str, Any]) -> str:
  """The record's last assistant ('gpt') turn ('' if none)."""
  turns = [t['value'] for t in record.get('conversations', ()) if t.get('from') == 'gpt']
  return turns[-1] if turns else ''


def trim_to_last_block(answer: str) -> str:
  """The answer up to its last blank line ('' when that leaves under MIN_TRIMMED_CHARS)."""
  cut = answer.rstrip().rfind('\n\n')
  kept = answer[:cut].rstrip() if cut > 0 else ''
  return kept if len(kept) >= MIN_TRIMMED_CHARS else ''


def exchanges(records: Iterable[dict[str, Any]], unfinished: str = 'drop') -> Iterator[Exchange]:
  """Every (context, answer) pair of the records, in order (see the module doc for `unfinished`)."""
  if unfinished not in UNFINISHED:
    raise ValueError(f'unfinished must be one of {UNFINISHED}, got {unfinished!r}')
  for index, record in enumerate(records):
    if record.get('kept') is False:  # a distilled answer its filters dropped
      continue
    cut = record.get('finished') is False
    if cut and unfinished == 'drop':
      continue
    cid = str(record.get('id', index))
    messages: list[dict[str, str]] = []
    turn = 0
    for t in record['conversations']:
      role = ROLES[t['from']]
      if role == 'assistant' and any(m['role'] == 'user' for m in messages):
        answer = trim_to_last_block(t['value']) if cut else t['value']
        if answer:
          yield Exchange(cid, turn, tuple(messages), answer)
        turn += 1
      if role == 'system' and messages:
        continue  # a system turn is only meaningful first
      messages.append({'role': role, 'content': t['value']})


def sharegpt_record(conversation_id: str, prompt: str, answer: str,
                    **extra: Any) -> dict[str, Any]:
  """A one-exchange ShareGPT record (extra fields are kept alongside)."""
  return {'id': conversation_id, 'conversations': [{'from': 'human', 'value': prompt},
                                                   {'from': 'gpt', 'value': answer}], **extra}
