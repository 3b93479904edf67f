"""`python -m apar_jax.bench.shard_hints` on the tiny model: two data shards on fake CPU devices
(the command fakes them before jax loads), both programs give the same tokens, one line per mode."""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_shard_hints_command_compares_both_programs():
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  proc = subprocess.run(
      [sys.executable, '-m', 'apar_jax.bench.shard_hints', '--config=configs/tiny.py',
       '--modes=ar,apar', '--concurrent=2', '--new_tokens=4', '--repeats=1'],
      capture_output=True, text=True, timeout=600, cwd=REPO, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert [line.split(':')[0] for line in lines] == ['ar', 'apar'], proc.stdout
  for line in lines:
    assert re.search(r'shared hints [\d.]+ ms/step, per-shard predicates [\d.]+ ms/step '
                     r'\(\d+ steps\): [\d.]+x faster with hints; same tokens: True$', line), line
  assert '2 data shards on 2 cpu devices' in proc.stderr


def test_shard_hints_needs_a_config():
  proc = subprocess.run([sys.executable, '-m', 'apar_jax.bench.shard_hints'],
                        capture_output=True, text=True, timeout=300, cwd=REPO)
  assert proc.returncode != 0 and 'pass --config=configs/<name>.py' in proc.stderr
