"""Parent side of the multi-process tests: start a two-process job plus a single-process reference,
wait for them with a deadline, kill what is left and report the process that failed first.

    run_job(WORKER, tmp_path, timeout_s=85)    # worker 0, worker 1 (4 fake CPU devices each) and
                                               # the reference (1 device), all side by side

Each process runs `python WORKER REPO_ROOT OUT_DIR ROLE [PORT PROCESS_ID]` (see `worker_init.py`) with
its output in OUT_DIR/<name>.log; results are files the workers write into OUT_DIR.
"""

import os
import pathlib
import socket
import subprocess
import sys
import time

from child_env import python_path

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKER_DEVICES = 4  # fake CPU devices per worker process: 2 processes x 4 = one 2x4 mesh


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def child_env(devices: int) -> dict[str, str]:
  """The parent's environment without APAR_* settings, on CPU with `devices` fake devices."""
  env = {k: v for k, v in os.environ.items() if not k.startswith('APAR_')}
  env.update(PYTHONPATH=python_path(), JAX_PLATFORMS='cpu',
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


def job_roles(port: int) -> dict[str, tuple[list[str], int]]:
  """name -> (worker arguments after OUT_DIR, fake device count): two workers and a reference."""
  return {'worker 0': (['worker', str(port), '0'], WORKER_DEVICES),
          'worker 1': (['worker', str(port), '1'], WORKER_DEVICES),
          'reference': (['reference'], 1)}


def run_roles(worker: str, out_dir: pathlib.Path, roles: dict[str, tuple[list[str], int]],
              timeout_s: float) -> None:
  """Runs every role of `worker` side by side; asserts each exited with 0 (log tail otherwise)."""
  procs, logs = [], []
  try:
    for name, (args, devices) in roles.items():
      logs.append(out_dir / f'{name.replace(" ", "_")}.log')
      with open(logs[-1], 'w') as log:
        procs.append(subprocess.Popen(
            [sys.executable, worker, REPO_ROOT, str(out_dir), *args],
            env=child_env(devices), stdout=log, stderr=subprocess.STDOUT))
    wait_all(procs, timeout_s)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
      p.wait()
  # Report the process that failed on its own before any we killed (-9) after it.
  for name, p, log in sorted(zip(roles, procs, logs), key=lambda r: r[1].returncode == -9):
    assert p.returncode == 0, f'{name} exited with {p.returncode}:\n{log.read_text()[-3000:]}'


def run_job(worker: str, out_dir: pathlib.Path, timeout_s: float) -> None:
  """The two-process job and the single-process reference of `worker`, within `timeout_s` in all."""
  run_roles(worker, out_dir, job_roles(free_port()), timeout_s)
