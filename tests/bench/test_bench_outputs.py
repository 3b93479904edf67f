"""Report files and plots, and the command line end to end."""

import json
import os
import subprocess
import sys

from apar_jax.bench.plots import make_plots
from apar_jax.bench.report import markdown, write_report

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_plots_and_report_files(report, tmp_path):
  plots = make_plots(report, str(tmp_path))
  assert set(plots) == {'Speed-up over AR', 'Steps vs generated tokens', 'KV pages under load',
                        'APAR branch timeline'}
  for name in plots.values():
    with open(tmp_path / name, 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'
  json_path, md_path = write_report(report, str(tmp_path), plots=plots)
  assert json.load(open(json_path))['modes'][0]['name'] == 'ar'
  text = open(md_path).read()
  for m in report['modes']:
    assert f'| {m["name"]} |' in text
  assert 'unknown engine mode' in text
  assert '![APAR branch timeline](bench_branch_timeline.png)' in text
  assert markdown(report).startswith('Config `tiny`')


def test_command_line_end_to_end(tmp_path):
  """`python -m apar_jax.commands.bench` (= `python -m apar_jax bench`) writes everything."""
  out = tmp_path / 'out'
  cmd = [sys.executable, '-m', 'apar_jax.commands.bench', '--config=configs/tiny.py',
         '--modes=ar', '--max_prompts=2', '--max_new_tokens=3', '--repeats=1', '--nopeers',
         '--notimeline',
         '--noroofline', '--serving_modes=ar', '--serving_requests=2', '--serving_rate=100',
         '--serving_page_budget=16', '--serving_slots=2', f'--out_dir={out}',
         f'--output={tmp_path / "report.json"}']
  proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  report = json.load(open(tmp_path / 'report.json'))
  assert [m['name'] for m in report['modes']] == ['ar', 'hf_generate', 'hf_prompt_lookup']
  assert report['modes'][1]['status'] == 'skipped' and report['serving']['ar']['status'] == 'ok'
  assert (out / 'bench_report.md').exists() and (out / 'bench_speedup.png').exists()
  assert '| ar | ok |' in proc.stdout
