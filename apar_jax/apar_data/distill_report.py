"""The distillation's JSONL read back: what each request has had (attempts, kept) and the totals.

Every line is one answer (ShareGPT record + `kind`, `finished`, `num_tokens`, `attempt`, `seed`,
`kept`, `drop_reason`, `tree_kind`); a record without `kept` (files written before the filters) counts
as kept. An unterminated last line (a crash mid-write) is ignored.
"""

import collections
import dataclasses
import json
import os
from typing import Any, Iterable, Iterator


@dataclasses.dataclass
class RequestLog:
  """What the file holds for one request id."""
  attempts: int = 0  # answers written (kept or not); the next attempt's index
  kept: bool = False


def read_records(path: str) -> Iterator[dict[str, Any]]:
  if not os.path.exists(path):
    return
  with open(path, encoding='utf-8') as f:
    for line in f:
      try:
        record = json.loads(line)
      except json.JSONDecodeError:
        continue
      if isinstance(record, dict) and 'id' in record:
        yield record


def is_kept(record: dict[str, Any]) -> bool:
  return record.get('kept', True) is not False


def _logs(records: Iterable[dict[str, Any]]) -> dict[str, RequestLog]:
  logs: dict[str, RequestLog] = collections.defaultdict(RequestLog)
  for record in records:
    log = logs[record['id']]
    log.attempts = max(log.attempts, int(record.get('attempt', 0)) + 1)
    log.kept = log.kept or is_kept(record)
  return dict(logs)


def request_logs(path: str) -> dict[str, RequestLog]:
  """Per request id: attempts written and whether one was kept."""
  return _logs(read_records(path))


def truncate_partial_line(path: str) -> None:
  """Drops an unterminated last line (a crash mid-write) so appends stay valid JSONL."""
  if not os.path.exists(path) or os.path.getsize(path) == 0:
    return
  with open(path, 'rb+') as f:
    data = f.read()
    if not data.endswith(b'\n'):
      f.truncate(data.rfind(b'\n') + 1)


def summarise(path: str) -> dict[str, Any]:
  """Totals of the file: answers, kept trees / plain answers, drops by reason, per request kind."""
  answers = kept_trees = kept_plain = tokens = 0
  drops: collections.Counter = collections.Counter()
  by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  by_sampling: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
  tree_kinds: collections.Counter = collections.Counter()
  records = list(read_records(path))
  for record in records:
    answers += 1
    tokens += int(record.get('num_tokens', 0))
    kind = record.get('kind', '?')
    by_sampling[sampling_label(record)]['kept' if is_kept(record) else 'dropped'] += 1
    if is_kept(record):
      by_kind[kind]['kept'] += 1
      if record.get('tree_kind'):
        kept_trees += 1
        tree_kinds[record['tree_kind']] += 1
      else:
        kept_plain += 1
    else:
      reason = record.get('drop_reason', 'unknown')
      drops[reason] += 1
      by_kind[kind][reason] += 1
  logs = _logs(records)
  return dict(answers=answers, requests=len(logs), requests_kept=sum(l.kept for l in logs.values()),
              kept_trees=kept_trees, kept_plain=kept_plain, tree_kinds=dict(tree_kinds),
              dropped=dict(drops.most_common()), tokens=tokens,
              by_request_kind={k: dict(v.most_common()) for k, v in sorted(by_kind.items())},
              by_sampling={k: dict(v.most_common()) for k, v in sorted(by_sampling.items())})


def sampling_label(record: dict[str, Any]) -> str:
  """The repetition settings an answer was drawn with (records from before they existed: off),
  and its format demonstration if it had one."""
  label = (f"repetition_penalty={float(record.get('repetition_penalty', 1.0)):g} "
           f"no_repeat_ngram={int(record.get('no_repeat_ngram', 0))}")
  label = label if record.get('penalize_symbols', True) else label + ' symbols_spared'
  return label + (f" list_demo={record['list_demo']}" if record.get('list_demo') else '')


def format_report(summary: dict[str, Any]) -> str:
  lines = [f"{summary['answers']} answers to {summary['requests']} requests ({summary['tokens']} "
           f"tokens); {summary['requests_kept']} requests have a kept answer: "
           f"{summary['kept_trees']} trees {summary['tree_kinds']}, {summary['kept_plain']} plain"]
  dropped = summary['dropped']
  total = sum(dropped.values())
  if total:
    lines.append(f'dropped {total}: ' + ', '.join(f'{k} {v}' for k, v in dropped.items()))
  for kind, counts in summary['by_request_kind'].items():
    lines.append(f'  {kind} requests: ' + ', '.join(f'{k} {v}' for k, v in counts.items()))
  for label, counts in summary.get('by_sampling', {}).items():
    lines.append(f"  {label}: kept {counts.get('kept', 0)} of "
                 f"{counts.get('kept', 0) + counts.get('dropped', 0)}")
  return '\n'.join(lines)
