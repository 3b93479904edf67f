"""Child side of the multi-process tests: parse the command line and join the two-process job.

    python WORKER REPO_ROOT OUT_DIR reference
    python WORKER REPO_ROOT OUT_DIR worker PORT PROCESS_ID

A worker script calls `start()` before it imports anything that touches a jax backend: for a
worker, it starts `jax.distributed` on 127.0.0.1:PORT (gloo collectives, two processes). The
reference role stays a plain single process. The repository and the test helpers are importable
through the PYTHONPATH the parent sets (`process_harness.child_env`).
"""

import dataclasses
import os
import sys
import traceback
import types


@dataclasses.dataclass(frozen=True)
class WorkerArgs:
  repo_root: str
  out_dir: str
  role: str  # 'worker' or 'reference'
  process_id: int  # 0 for the reference


def _exit_at_once(kind: type[BaseException], value: BaseException,
                  tb: types.TracebackType | None) -> None:
  """An uncaught error ends the process now: at a normal exit `jax.distributed` would wait for the
  other process, itself stuck in a collective with this one, until the parent's deadline."""
  traceback.print_exception(kind, value, tb)
  sys.stderr.flush()
  os._exit(1)


def start(argv: list[str] | None = None) -> WorkerArgs:
  """Parses `argv` (default sys.argv) and joins the job when the role is 'worker'."""
  argv = sys.argv if argv is None else argv
  sys.excepthook = _exit_at_once
  repo_root, out_dir, role = argv[1:4]
  if role == 'reference':
    return WorkerArgs(repo_root, out_dir, role, 0)
  if role != 'worker':
    raise SystemExit(f'unknown role {role!r}')
  from apar_jax import distributed  # imports jax; no backend touched yet
  port, process_id = int(argv[4]), int(argv[5])
  setup = distributed.initialize_from_env_or_flags(
      coordinator_address=f'127.0.0.1:{port}', num_processes=2, process_id=process_id,
      initialization_timeout_s=60)
  assert setup.mode == 'explicit', setup
  assert distributed.initialize_from_env_or_flags() is setup  # idempotent
  return WorkerArgs(repo_root, out_dir, role, process_id)
