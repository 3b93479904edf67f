"""Where the test helpers are imported from, for pytest and for the processes tests start.

pytest puts `PYTHONPATH_DIRS` on `sys.path` (`pythonpath` in pyproject.toml: keep both lists equal);
a child process gets them through its environment (`child_env`), so no file edits `sys.path`.
"""

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHONPATH_DIRS = ('.', 'tests', 'tests/engine', 'tests/training', 'tests/speculative',
                   'tests/distributed', 'tests/bench', 'tests/serving', 'tests/pallas_kernels',
                   'tests/weights')


def python_path() -> str:
  """The repository and the helper folders, as a PYTHONPATH value."""
  return os.pathsep.join(os.path.normpath(os.path.join(REPO_ROOT, d)) for d in PYTHONPATH_DIRS)


def child_env(**overrides: str) -> dict[str, str]:
  """This process's environment with the helpers importable (and `overrides` set)."""
  env = dict(os.environ, PYTHONPATH=python_path())
  env.update(overrides)
  return env
