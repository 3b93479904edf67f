"""The accelerator check's smoke run on this CPU: every section runs, kernels agree with their
reference, lossless modes are token-identical, the report is written; a kernel that disagrees fails
the run loudly."""

import json
import os
import subprocess
import sys

import jax.numpy as jnp
import pytest

from apar_jax.modes import SPEC_MODES

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
def test_smoke_run_passes_and_writes_its_report(tmp_path):
  out = tmp_path / 'report'
  proc = subprocess.run([sys.executable, '-m', 'apar_jax.bench.device_check', '--smoke',
                         f'--out_dir={out}', '--repeats=2'], cwd=REPO, capture_output=True,
                        text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.loads((out / 'device_check.json').read_text())
  assert report['ok'] and report['smoke'] and report['device'].startswith('cpu')
  sections = report['sections']
  assert {(r['name'], r['dtype']) for r in sections['kernels']} == {
      (n, d) for n in ('branch decode', 'branch verify', 'packed tree')
      for d in ('float32', 'bfloat16')}
  assert all(r['impl'] == 'pallas_interpret' and r['ok'] for r in sections['kernels'])
  assert {(p['dtype'], p['batch'], p['width']) for p in sections['width']} == {
      (d, b, w) for d in ('float32', 'bfloat16') for b in (1, 4) for w in (1, 2, 4, 8)}
  identity = {r['mode']: r for r in sections['identity']}
  assert set(identity) == set(SPEC_MODES)  # every drafter, alone and with APAR
  assert all(r['ok'] and r['refused'] == 0 for r in identity.values())
  assert identity['apar_lookup']['forks'] > 0  # the APAR comparison really forks
  assert {r['mode'] for r in sections['speed']} == set(identity) | {'ar', 'apar'}
  table = (out / 'device_check.md').read_text()
  assert '**pass**' in table and '## Kernels against the jnp reference' in table
  assert table in proc.stdout
  assert (out / 'width_curve.png').stat().st_size > 10_000


def test_a_kernel_outside_its_tolerance_fails_the_check(tmp_path, monkeypatch):
  import pallas_kernels as pk
  from apar_jax.bench import device_check, device_kernels
  real = pk.branch_attention

  def off_by_a_little(*args, impl, **kw):
    out = real(*args, impl=impl, **kw)
    return out if impl == 'reference' else out + jnp.asarray(1e-2, out.dtype)

  monkeypatch.setattr(device_kernels.pk, 'branch_attention', off_by_a_little)
  report = device_check.run_check(str(tmp_path), smoke=True, sections=('kernels',), repeats=1)
  assert not report['ok']
  bad = {(r['name'], r['dtype']) for r in report['sections']['kernels'] if not r['ok']}
  assert bad == {('branch decode', 'float32'), ('branch verify', 'float32')}  # bf16 allows 1e-2
  assert '**FAIL**' in (tmp_path / 'device_check.md').read_text()
