"""`distill` killed (SIGKILL) mid-run and run again: no answer lost, none written twice; stopped with
SIGTERM: the report matches the file."""

import collections
import json
import os
import signal
import subprocess
import sys
import time

from apar_jax.commands import distill
from apar_jax.defaults import distill_defaults
from child_env import child_env

SETTINGS = dict(num_prompts=30, batch_size=2, max_new_tokens=32, backend='engine', max_attempts=2)
TOTAL = SETTINGS['num_prompts'] * SETTINGS['max_attempts']  # a random model's answers never pass
CHILD = f'''
import sys
from conftest import load_config
from apar_jax.commands import distill
from apar_jax.defaults import distill_defaults
config = load_config('tiny')
config.distill = distill_defaults()
config.distill.update(output=sys.argv[1], **{SETTINGS!r})
distill.run(config)
'''


def _lines(path):
  with open(path, encoding='utf-8') as f:
    return f.read().splitlines()


def _stop_mid_run(out: str, sig: int, command: list[str] | None = None,
                  stderr=subprocess.DEVNULL) -> int:
  """Starts a distillation into `out` (by `command`, or `distill.run` in a child), sends `sig` once
  it wrote 5 answers; its exit code."""
  child = subprocess.Popen(command or [sys.executable, '-c', CHILD, out], stderr=stderr,
                           env=child_env())
  deadline = time.monotonic() + 600
  while time.monotonic() < deadline and child.poll() is None:
    if os.path.exists(out) and len(_lines(out)) >= 5:
      break
    time.sleep(0.02)  # polling the file the child writes, not waiting a fixed time
  child.send_signal(sig)
  return child.wait(timeout=120)


def test_sigterm_stops_with_a_report_that_matches_the_file(tmp_path):
  out = str(tmp_path / 'out.jsonl')
  assert _stop_mid_run(out, signal.SIGTERM) != 0
  written = len(_lines(out))
  assert 5 <= written < TOTAL, 'the child was not stopped mid-run'
  with open(distill.report_path(out), encoding='utf-8') as f:
    assert json.load(f)['answers'] == written


CLI_CONFIG = f'''
from conftest import load_config
from apar_jax.defaults import distill_defaults
def get_config():
  config = load_config('tiny')
  config.distill = distill_defaults()
  config.distill.update(**{SETTINGS!r})
  return config
'''


def test_the_command_stopped_by_sigterm_says_so_in_one_line(tmp_path):
  out = str(tmp_path / 'out.jsonl')
  config = tmp_path / 'tiny_distill.py'
  config.write_text(CLI_CONFIG)
  errors = tmp_path / 'stderr.txt'
  with open(errors, 'w', encoding='utf-8') as stderr:
    code = _stop_mid_run(out, signal.SIGTERM, [sys.executable, '-m', 'apar_jax', 'distill',
                                               f'--config={config}',
                                               f'--config.distill.output={out}'], stderr)
  text = errors.read_text()
  assert code == 130, text[-2000:]
  assert 'distill: stopped (interrupted)' in text and 'Traceback' not in text, text[-2000:]


def test_killed_distillation_resumes_without_gaps_or_duplicates(tmp_path, load_config):
  out = str(tmp_path / 'out.jsonl')
  _stop_mid_run(out, signal.SIGKILL)
  written = len(_lines(out))
  assert 5 <= written < TOTAL, 'the child was not killed mid-run'

  config = load_config('tiny')
  config.distill = distill_defaults()
  config.distill.update(output=out, **SETTINGS)
  distill.run(config)
  records = [json.loads(line) for line in _lines(out)]
  assert len(records) == TOTAL
  attempts = collections.defaultdict(list)
  for r in records:
    attempts[r['id']].append(r['attempt'])
  assert len(attempts) == SETTINGS['num_prompts']
  assert all(sorted(a) == list(range(SETTINGS['max_attempts'])) for a in attempts.values())
  assert distill.rejudge(out) == 0
