"""Executes the notebooks top to bottom in fresh kernels and saves them with their outputs.

    python notebooks/execute.py                      # every notebook of this folder, in place
    python notebooks/execute.py quickstart kernels   # some of them
    python notebooks/execute.py --timeout=1200 --out_dir=/tmp/nb   # per-cell limit; copies elsewhere

Run from the repository root or from notebooks/. The kernel is the Python running this script (a
kernelspec for it is written to a temporary directory), so the notebooks see the same environment
(e.g. `.venv/bin/python notebooks/execute.py`). The kernel's working directory is the repository
root. `tests/notebooks/test_notebooks.py` uses `execute_notebook` without saving.
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from typing import Iterator, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
NOTEBOOKS = ('quickstart', 'apar_finetuning', 'kernels')
KERNEL_NAME = 'apar-jax-python'
STANDARD_KERNELSPEC = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}


@contextlib.contextmanager
def this_python_kernel() -> Iterator[str]:
  """A kernelspec that runs `sys.executable` (found through JUPYTER_PATH while inside)."""
  with tempfile.TemporaryDirectory(prefix='apar_jax_kernel_') as tmp:
    spec_dir = os.path.join(tmp, 'kernels', KERNEL_NAME)
    os.makedirs(spec_dir)
    with open(os.path.join(spec_dir, 'kernel.json'), 'w', encoding='utf-8') as f:
      json.dump({'argv': [sys.executable, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
                 'display_name': 'apar-jax (this Python)', 'language': 'python',
                 'env': {'MPLBACKEND': 'module://matplotlib_inline.backend_inline'}}, f)
    old = os.environ.get('JUPYTER_PATH')
    os.environ['JUPYTER_PATH'] = tmp + (os.pathsep + old if old else '')
    try:
      yield KERNEL_NAME
    finally:
      if old is None:
        os.environ.pop('JUPYTER_PATH', None)
      else:
        os.environ['JUPYTER_PATH'] = old


def notebook_path(name: str) -> str:
  return os.path.join(HERE, name if name.endswith('.ipynb') else f'{name}.ipynb')


def execute_notebook(path: str, *, timeout: int = 900, out_path: Optional[str] = None):
  """Runs every cell of `path` (cwd = repository root); returns (notebook, seconds).

  Writes the executed notebook to `out_path` when given (may be `path` itself). A failing cell
  raises nbclient's CellExecutionError.
  """
  import nbclient
  import nbformat
  nb = nbformat.read(path, as_version=4)
  with this_python_kernel() as kernel_name:
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                                     resources={'metadata': {'path': REPO_ROOT}})
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
  nb.metadata['kernelspec'] = dict(STANDARD_KERNELSPEC)  # what Colab and GitHub expect
  if out_path:
    nbformat.write(nb, out_path)
  return nb, seconds


def main(argv: Optional[list] = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('names', nargs='*', default=list(NOTEBOOKS))
  parser.add_argument('--timeout', type=int, default=900, help='seconds per cell')
  parser.add_argument('--out_dir', default='', help='write the executed copies here (default: in place)')
  args = parser.parse_args(argv)
  for name in args.names:
    path = notebook_path(name)
    out = os.path.join(args.out_dir, os.path.basename(path)) if args.out_dir else path
    if args.out_dir:
      os.makedirs(args.out_dir, exist_ok=True)
    _, seconds = execute_notebook(path, timeout=args.timeout, out_path=out)
    print(f'{os.path.basename(path)}: executed in {seconds:.0f}s -> {os.path.relpath(out)}', flush=True)


if __name__ == '__main__':
  main()
