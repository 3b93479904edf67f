"""`python -m apar_jax serve` as a user starts it: it listens, compiles, answers; bad flags fail with
a one-line message."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def test_serve_answers_once_healthy():
  port = free_port()
  proc = subprocess.Popen([sys.executable, '-m', 'apar_jax', 'serve', '--config=configs/tiny.py',
                           f'--port={port}'], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  url = f'http://127.0.0.1:{port}'
  try:
    deadline = time.monotonic() + 300
    while True:
      assert proc.poll() is None, proc.stdout.read()[-3000:]
      try:
        with urllib.request.urlopen(f'{url}/health') as r:
          if r.status == 200:
            break
      except (urllib.error.URLError, ConnectionError):
        pass  # not listening yet, or 503 while compiling
      assert time.monotonic() < deadline, 'the server never became healthy'
      time.sleep(0.2)
    body = json.dumps({'messages': [{'role': 'user', 'content': 'Hello there'}],
                       'max_tokens': 4}).encode()
    request = urllib.request.Request(f'{url}/v1/chat/completions', body,
                                     {'content-type': 'application/json'})
    with urllib.request.urlopen(request) as r:
      answer = json.loads(r.read())
    assert answer['usage']['completion_tokens'] == 4 and answer['model'] == 'tiny'
  finally:
    proc.terminate()
    out, _ = proc.communicate(timeout=60)
  assert 'Traceback' not in out, out[-3000:]


@pytest.mark.parametrize('args, message', [
    (('--mode=nonsense',), 'unknown --mode'),
    (('--port=70000',), '--port must be'),
    (('--max_waiting=0',), '--max_waiting must be'),
])
def test_bad_serve_flags_exit_with_a_clear_message(args, message):
  proc = subprocess.run([sys.executable, '-m', 'apar_jax', 'serve', '--config=configs/tiny.py',
                         *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
  assert proc.returncode == 2
  assert message in proc.stderr and 'Traceback' not in proc.stderr
