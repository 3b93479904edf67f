"""`distill` in a two-process job (gloo on 127.0.0.1, four fake CPU devices each, one 2x4 data x tensor
mesh): every process decodes, process 0 alone writes the JSONL, and a resumed run answers only what
process 0's file lacks; the answers are those of one process."""

import json
import os

from process_harness import run_job

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'distill_worker.py')
TIMEOUT_S = 200  # for all three processes together, on a loaded 2-core machine


def _records(path):
  with open(path, encoding='utf-8') as f:
    return [json.loads(line) for line in f]


def test_two_process_distill_writes_once_and_matches_one_process(tmp_path):
  run_job(WORKER, tmp_path, TIMEOUT_S)
  reference = _records(tmp_path / 'reference.jsonl')
  job = _records(tmp_path / 'job.jsonl')
  assert len(reference) == 6
  assert [r['id'] for r in job] == [r['id'] for r in reference]  # each request once, in order
  assert job == reference  # same greedy answers, same fields
  for pid in (0, 1):
    assert json.loads((tmp_path / f'worker_{pid}.json').read_text()) == dict(process=pid,
                                                                             processes=2)
  logs = {pid: (tmp_path / f'worker_{pid}.log').read_text() for pid in (0, 1)}
  assert '[distill] 6 prompts (train split), 4 settled in' in logs[0]  # the resumed run
  assert '[distill]' not in logs[1]  # progress and messages from process 0 only
