"""The package's layers (pyproject.toml `[tool.importlinter]`, drawn in docs/architecture.md) hold:
`lint-imports` finds no import that breaks a contract."""

import os
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT = os.path.join(os.path.dirname(sys.executable), 'lint-imports')


def test_import_contracts_are_kept():
  if not os.path.exists(LINT):
    pytest.fail('lint-imports is missing: `make install` installs import-linter (the test extra)')
  proc = subprocess.run([LINT, '--no-cache'], cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
  kept = [line for line in proc.stdout.splitlines() if line.startswith('Contracts:')]
  assert kept and int(kept[0].split()[1]) >= 5, proc.stdout[-2000:]  # "Contracts: N kept, 0 broken."


def test_layers_picture_is_drawn_from_the_contract(tmp_path):
  out = tmp_path / 'layers.png'
  proc = subprocess.run([sys.executable, os.path.join(REPO_ROOT, 'docs', 'draw_layers.py'),
                         f'--out={out}'], cwd=REPO_ROOT, capture_output=True, text=True,
                        timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert out.stat().st_size > 10_000 and '10 layers' in proc.stdout
