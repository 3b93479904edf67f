"""`python -m apar_jax generate --mode=apar` as a two-process job started through the APAR_*
environment variables (gloo on 127.0.0.1, four fake CPU devices each, one 2x4 data x tensor mesh: one
engine data shard per process) writes the records of a single process, once, from process 0."""

import json
import os

from process_harness import run_job

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'generate_cli_worker.py')
TIMEOUT_S = 200  # for all three processes together, on a loaded 2-core machine
PROMPTS = ['Name three colours.', 'Hello', 'List two fruits and say why you like them.',
           'What is two plus two?', 'Write one word.']
SAME = ('prompt', 'mode', 'text', 'token_ids', 'num_generated_tokens', 'decode_steps', 'forks',
        'max_live_branches', 'peak_kv_pages')


def test_two_process_generate_cli_matches_one_process(tmp_path):
  (tmp_path / 'prompts.txt').write_text('\n'.join(PROMPTS) + '\n')
  run_job(WORKER, tmp_path, TIMEOUT_S)
  reference = [json.loads(line) for line in (tmp_path / 'reference.jsonl').read_text().splitlines()]
  job = [json.loads(line) for line in (tmp_path / 'worker.jsonl').read_text().splitlines()]
  assert [r['prompt'] for r in reference] == PROMPTS
  assert [{k: r[k] for k in SAME} for r in job] == [{k: r[k] for k in SAME} for r in reference]
  logs = {pid: (tmp_path / f'worker_{pid}.log').read_text() for pid in (0, 1)}
  assert 'wrote 5 records' in logs[0] and 'wrote' not in logs[1]  # process 0 alone writes
