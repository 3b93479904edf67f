"""`python -m apar_jax distill`: the base model answers the shipped requests -> filtered ShareGPT JSONL.

    python -m apar_jax distill --config=configs/apar_smollm2_135m.py [--config.distill.num_prompts=N]

Requests: the first `num_prompts` of `apar_data.prompt_generator`'s `split` (default 'train'; the
held-out split is never distilled), kinds mixed as `kind_shares` says ('' = the generator's mix).
With `list_demo` the base model sees a format demonstration (`apar_data.format_demos`) as an earlier
chat turn before each list request; the record keeps the request as written. They stream through the
engine (continuous batching), sampled with the config's temperature / top-p, each attempt with its
own seed. Every answer is judged by `apar_data.distill_filter` (finished, content filters, no 4-gram
loop, a tree the extractor accepts with no duplicate titles or empty items for list / paragraph
requests, no list for plain ones); a dropped answer is followed by another attempt until
`max_attempts`. An answer that already loops is cancelled mid-decode (`distill_filter.hopeless`):
its slot goes to the next request.

Every answer, kept or dropped, is appended to `config.distill.output` as it finishes: a ShareGPT
record with `kind`, `finished`, `num_tokens`, `attempt`, `seed`, `kept`, `drop_reason`, `tree_kind`,
`split`, the sampling settings and `list_demo` (the trainer reads only kept ones). A re-run first
judges the file's finished answers again with the filters of the day (`rejudge`), then resumes: a
request with a kept answer is done, else its next attempt follows the ones in the file, so a kill at
any moment loses at most the answers in flight and never writes one twice. The totals (kept, dropped
by reason) are printed and written to `<output>.report.json`, also when stopped with Ctrl-C (SIGINT)
or `kill` (SIGTERM). In a multi-process job every process decodes and process 0 alone reads and
writes the file (the others take its record of what is left).
"""

import collections
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import sys
import threading
from typing import Iterator, Optional

import ml_collections
import numpy as np
from tqdm import tqdm

from apar_jax import distributed
from apar_jax.apar_data.distill_filter import REQUEST_KINDS, Verdict, hopeless, judge
from apar_jax.apar_data.distill_report import (format_report, read_records, request_logs,
                                               summarise, truncate_partial_line)
from apar_jax.apar_data.format_demos import demo_turns
from apar_jax.apar_data.prompt_generator import generate_prompts
from apar_jax.apar_data.sharegpt import last_answer, sharegpt_record
from apar_jax.commands.base_answers import Job, answer_stream, base_runtime, check_backend


def distill_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  from apar_jax.defaults import distill_defaults
  dc = distill_defaults()
  if 'distill' in config:
    dc.update(config.distill.to_dict())  # files written before a field existed keep its default
  return dc


def attempt_seed(seed: int, prompt_id: str, attempt: int) -> int:
  """The sampling seed of one attempt at one request (the same on every machine and re-run)."""
  digest = hashlib.sha1(f'{seed}:{prompt_id}:{attempt}'.encode()).hexdigest()
  return int(digest[:7], 16)


def report_path(output: str) -> str:
  return output + '.report.json'


def kind_shares(text: str) -> Optional[dict[str, float]]:
  """`'list=0.6,plain=0.4'` -> {'list': 0.6, 'plain': 0.4} (the request kinds to draw and their
  shares); '' -> None (the generator's own mix)."""
  if not text.strip():
    return None
  shares = {}
  for part in text.split(','):
    kind, sep, value = part.partition('=')
    kind = kind.strip()
    try:
      share = float(value) if sep else -1.0
    except ValueError:
      share = -1.0
    if kind not in REQUEST_KINDS or share <= 0 or kind in shares:
      raise ValueError(f'config.distill.kind_shares={text!r}: expected comma-separated kind=share '
                       f'pairs with kinds from {REQUEST_KINDS} (each once) and shares > 0, '
                       "e.g. 'list=0.6,plain=0.4'")
    shares[kind] = share
  return shares


def _check(dc: ml_collections.ConfigDict) -> None:
  if int(dc.batch_size) < 1 or int(dc.max_new_tokens) < 1:
    raise ValueError('config.distill.batch_size and max_new_tokens must be >= 1')
  if int(dc.max_attempts) < 1:
    raise ValueError(f'config.distill.max_attempts must be >= 1, got {dc.max_attempts}')
  check_backend(dc)
  kind_shares(dc.kind_shares)
  demo_turns(dc.list_demo)


SUPERSEDED = 'another_attempt_kept'


def rejudge(out_path: str) -> int:
  """Judges the file's finished answers again with today's filters (they may have changed since the
  file was written) and rewrites it atomically if a verdict changed; returns how many changed. Only
  the first kept answer of a request stays kept (later ones: `SUPERSEDED`). Cut answers keep their
  verdict (their text is what the cut left)."""
  records = list(read_records(out_path))
  changed = 0
  kept_ids: set[str] = set()
  for record in records:
    verdict = None
    if record.get('finished') is True and record.get('kind') in REQUEST_KINDS:
      verdict = judge(last_answer(record), True, record['kind'])
    elif 'kept' in record:
      verdict = Verdict(record['kept'], record.get('drop_reason', ''), record.get('tree_kind', ''))
    if verdict is None:
      continue
    if verdict.kept and record['id'] in kept_ids:
      verdict = Verdict(False, SUPERSEDED, '')
    kept_ids.update([record['id']] if verdict.kept else [])
    new = dict(kept=verdict.kept, drop_reason=verdict.reason, tree_kind=verdict.tree_kind)
    if any(record.get(k) != v for k, v in new.items()):
      record.update(new)
      changed += 1
  if changed:
    tmp = out_path + '.rejudged'
    with open(tmp, 'w', encoding='utf-8') as f:
      f.writelines(json.dumps(r, ensure_ascii=False) + '\n' for r in records)
    os.replace(tmp, out_path)
  return changed


def _todo(prompts, out_path: str, main: bool) -> np.ndarray:
  """[n, 2] int: (attempts written, kept) per prompt, as process 0's file says."""
  state = np.zeros((len(prompts), 2), np.int64)
  if main:
    logs = request_logs(out_path)
    for i, p in enumerate(prompts):
      log = logs.get(p.id)
      if log is not None:
        state[i] = (log.attempts, log.kept)
  return distributed.agree_with_main(state)


@contextlib.contextmanager
def exclusive(out_path: str, main: bool) -> Iterator[None]:
  """Holds `<output>.lock` (process 0): a second distillation into the same file stops at once
  instead of appending beside this one (or writing to a file this one rewrites)."""
  if not main:
    yield
    return
  with open(out_path + '.lock', 'a+', encoding='utf-8') as lock:
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      lock.seek(0)
      raise RuntimeError(f'another distillation is writing {out_path} (pid {lock.read().strip()}); '
                         'wait for it or stop it first') from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def _interrupt(signum, frame) -> None:
  raise KeyboardInterrupt(f'signal {signum}')


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
  """SIGTERM stops the run like Ctrl-C (the report is still written): a background run started
  with `nohup ... &` ignores SIGINT, so `kill PID` is how it is stopped."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = signal.signal(signal.SIGTERM, _interrupt)
  try:
    yield
  finally:
    signal.signal(signal.SIGTERM, previous)


def run(config: ml_collections.ConfigDict) -> None:
  """Answers, judges and appends until every request has a kept answer or used its attempts."""
  dc = distill_section(config)
  _check(dc)
  main = distributed.is_main_process()
  if main:
    os.makedirs(os.path.dirname(os.path.abspath(dc.output)), exist_ok=True)
  with exclusive(dc.output, main), sigterm_as_interrupt():
    _run(config, dc, main)


def _run(config: ml_collections.ConfigDict, dc: ml_collections.ConfigDict, main: bool) -> None:
  prompts = generate_prompts(int(dc.num_prompts), int(dc.prompt_seed), split=dc.split,
                             shares=kind_shares(dc.kind_shares))
  out_path = dc.output
  max_attempts = int(dc.max_attempts)
  log = (lambda msg: print(msg, file=sys.stderr)) if main else (lambda msg: None)  # noqa: E731
  if main:
    truncate_partial_line(out_path)
    changed = rejudge(out_path)
    if changed:
      log(f'[distill] today\'s filters changed {changed} verdicts in {out_path} (rewritten)')
  state = _todo(prompts, out_path, main)
  queue = collections.deque(
      Job(p, int(a), attempt_seed(int(dc.seed), p.id, int(a)))
      for p, (a, kept) in zip(prompts, state) if not kept and a < max_attempts)
  log(f'[distill] {len(prompts)} prompts ({dc.split} split), {len(prompts) - len(queue)} settled in '
      f'{out_path}, {len(queue)} to answer (up to {max_attempts} attempts each)')
  try:
    if queue:
      _answer(config, dc, queue, out_path, main)
  finally:  # also when stopped with Ctrl-C / SIGINT / SIGTERM: the report matches the file
    if main:
      summary = summarise(out_path)
      with open(report_path(out_path), 'w', encoding='utf-8') as f:
        json.dump(summary, f, indent=1)
      log('[distill] ' + format_report(summary))


def _answer(config, dc, queue, out_path: str, main: bool) -> None:
  max_attempts = int(dc.max_attempts)
  counts: collections.Counter = collections.Counter()
  out = open(out_path, 'a', encoding='utf-8') if main else contextlib.nullcontext()
  with out as f, tqdm(total=len(queue), desc='distill', unit='request', file=sys.stderr,
                      dynamic_ncols=True, disable=not main) as bar:
    for job, item in answer_stream(base_runtime(config), config, dc, queue, give_up=hopeless):
      p = job.prompt
      verdict = (Verdict(False, item.given_up, '') if item.given_up
                 else judge(item.text, item.finished, p.kind))
      counts['kept' if verdict.kept else verdict.reason] += 1
      if f is not None:
        f.write(json.dumps(sharegpt_record(
            p.id, p.text, item.text, kind=p.kind, finished=item.finished,
            num_tokens=len(item.answer_ids), attempt=job.attempt, seed=job.seed, kept=verdict.kept,
            drop_reason=verdict.reason, tree_kind=verdict.tree_kind, split=p.split,
            temperature=float(dc.temperature), top_p=float(dc.top_p), top_k=int(dc.top_k),
            repetition_penalty=float(dc.repetition_penalty),
            no_repeat_ngram=int(dc.no_repeat_ngram),
            penalize_symbols=bool(dc.get('penalize_symbols', True)),
            list_demo=dc.list_demo if p.kind == 'list' else ''),
            ensure_ascii=False) + '\n')
        f.flush()
      if not verdict.kept and job.attempt + 1 < max_attempts:
        queue.append(Job(p, job.attempt + 1, attempt_seed(int(dc.seed), p.id, job.attempt + 1)))
      else:
        bar.update(1)
      bar.set_postfix(kept=counts['kept'], dropped=sum(counts.values()) - counts['kept'])
