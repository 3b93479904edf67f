"""Two processes on 127.0.0.1 (gloo, four fake CPU devices each) form one 2x4 (data x tensor) mesh with
`make_global_mesh`; the tiny model's forward sharded over it matches a single-process run."""

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'two_process_worker.py')
TIMEOUT_S = 85  # for all three processes together


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def child_env(devices: int) -> dict[str, str]:
  env = {k: v for k, v in os.environ.items() if not k.startswith('APAR_')}
  env.update(PYTHONPATH=REPO_ROOT, JAX_PLATFORMS='cpu',
             XLA_FLAGS=f'--xla_force_host_platform_device_count={devices}')
  return env


def wait_all(procs: list[subprocess.Popen], timeout_s: float) -> None:
  """Waits until all exit, one fails, or time runs out (then the caller kills what is left)."""
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    codes = [p.poll() for p in procs]
    if all(c is not None for c in codes) or any(c not in (None, 0) for c in codes):
      return
    time.sleep(0.2)


def test_two_processes_form_one_mesh_and_match_single_process(tmp_path):
  port = free_port()
  roles = {'worker 0': ['worker', str(port), '0'], 'worker 1': ['worker', str(port), '1'],
           'reference': ['reference']}
  procs, logs = [], []
  try:
    for name, args in roles.items():
      logs.append(tmp_path / f'{name.replace(" ", "_")}.log')
      with open(logs[-1], 'w') as log:
        procs.append(subprocess.Popen(
            [sys.executable, WORKER, REPO_ROOT, str(tmp_path), *args],
            env=child_env(1 if name == 'reference' else 4), stdout=log, stderr=subprocess.STDOUT))
    wait_all(procs, TIMEOUT_S)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
      p.wait()
  # Report the process that failed on its own before any we killed (-9) after it.
  for name, p, log in sorted(zip(roles, procs, logs), key=lambda r: r[1].returncode == -9):
    assert p.returncode == 0, f'{name} exited with {p.returncode}:\n{log.read_text()[-3000:]}'

  reference = np.load(tmp_path / 'reference.npy')
  for pid in (0, 1):
    np.testing.assert_allclose(np.load(tmp_path / f'logits_{pid}.npy'), reference, atol=1e-5)
    facts = json.loads((tmp_path / f'facts_{pid}.json').read_text())
    assert facts['rows'] == [[0], [1]]                # data row i lives on process i
    assert facts['main'] == (pid == 0)
    assert facts['logits_shape'] == [4, 10, 96]
    assert facts['logits_local_rows'] == [2 * pid]    # each process holds its half of the batch
    assert facts['q_shard_shapes'] == [[64, 2, 8]]    # q heads split four ways within the host
    assert facts['describe'] == f'process {pid}/2: 4 local cpu devices, 8 in all'
