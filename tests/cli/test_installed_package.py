"""A non-editable install (no checkout beside the package) decodes with a config file of its own and
finds its defaults in the package: nothing is loaded from the repository's `configs/`."""

import json
import os
import shutil
import subprocess
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(site: str, cwd: str, *args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, PYTHONPATH=site)  # the installed copy comes before the editable one
  return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                        cwd=cwd, env=env)


def test_installed_package_generates_with_its_own_config_file(tmp_path):
  site, work, source = tmp_path / 'site', tmp_path / 'work', tmp_path / 'source'
  work.mkdir()
  # a copy of what the package is built from, so no stale build/ folder of the checkout sneaks in
  source.mkdir()
  for name in ('pyproject.toml', 'README.md'):
    shutil.copy(os.path.join(REPO_ROOT, name), source / name)
  for name in ('apar_jax', 'pallas_kernels'):
    shutil.copytree(os.path.join(REPO_ROOT, name), source / name,
                    ignore=shutil.ignore_patterns('__pycache__'))
  subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation',
                  '--target', str(site), str(source)], check=True, capture_output=True, timeout=300)
  (work / 'configs').mkdir()
  shutil.copy(os.path.join(REPO_ROOT, 'configs', 'tiny.py'), work / 'configs' / 'tiny.py')

  where = _python(str(site), str(work), '-c',
                  'import apar_jax, json; from apar_jax.defaults import default_config as d; '
                  'c = d.get_config(); print(json.dumps([apar_jax.__file__, c.name, '
                  'c.weights.apar_adapter]))')
  assert where.returncode == 0, where.stderr[-2000:]
  package_file, name, adapter = json.loads(where.stdout.strip().splitlines()[-1])
  assert package_file.startswith(str(site))  # not the checkout
  assert (name, adapter) == ('smollm2_135m', '')  # no checkout: no bundled adapter path

  out = work / 'out.jsonl'
  proc = _python(str(site), str(work), '-m', 'apar_jax', 'generate', '--config=configs/tiny.py',
                 '--prompt=Hello there', '--max_new_tokens=4', f'--output={out}')
  assert proc.returncode == 0, proc.stderr[-2000:]
  [record] = [json.loads(line) for line in out.read_text().splitlines()]
  assert record['num_generated_tokens'] == len(record['token_ids']) <= 4
