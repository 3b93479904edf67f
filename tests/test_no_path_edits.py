"""No file edits `sys.path`: the package is installed, the test helpers come from pytest's
`pythonpath` and, in child processes, from PYTHONPATH (`child_env`), and both lists agree."""

import os
import re
import subprocess
import tomllib

from child_env import PYTHONPATH_DIRS, REPO_ROOT

PATH_EDIT = re.compile(r'sys\.path\.(insert|append|extend)\(|sys\.path\s*(\+=|=)')


def test_no_tracked_file_edits_sys_path():
  files = subprocess.run(['git', 'ls-files', '*.py', '*.ipynb'], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True).stdout.split()
  offenders = []
  for name in files:
    with open(os.path.join(REPO_ROOT, name), encoding='utf-8') as f:
      offenders += [f'{name}:{n}' for n, line in enumerate(f, 1)
                    if PATH_EDIT.search(line) and not line.lstrip().startswith('#')
                    and 'PATH_EDIT' not in line]
  assert not offenders, offenders


def test_pytest_and_child_processes_see_the_same_helpers():
  with open(os.path.join(REPO_ROOT, 'pyproject.toml'), 'rb') as f:
    ini = tomllib.load(f)['tool']['pytest']['ini_options']
  assert tuple(ini['pythonpath']) == PYTHONPATH_DIRS
  for d in PYTHONPATH_DIRS:
    assert os.path.isdir(os.path.join(REPO_ROOT, d)), d
