"""Two processes (gloo on 127.0.0.1, four fake CPU devices each, one 2x4 data x tensor mesh) train the
tiny model's LoRA adapter like one process: same loss at each step, same weights (1e-5), one set of
logs, checkpoints that resume across the job, and one exported adapter (replacing a stale one)."""

import glob
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from process_harness import run_job  # noqa: E402

from apar_jax.training.adapter_io import load_adapter  # noqa: E402

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'train_worker.py')
TIMEOUT_S = 200  # for all three processes together, on a loaded 2-core machine


def _losses(log_dir) -> dict[int, float]:
  lines = [json.loads(line) for line in open(os.path.join(log_dir, 'metrics.jsonl'))]
  steps = [r['step'] for r in lines]
  assert steps == sorted(set(steps)), f'metrics written more than once: {steps}'
  return {r['step']: r['loss'] for r in lines}


def test_two_process_training_matches_single_process(tmp_path):
  stale = tmp_path / 'job' / 'adapter'
  stale.mkdir(parents=True)
  (stale / 'stale.txt').write_text('an older export')
  run_job(WORKER, tmp_path, TIMEOUT_S)

  want = _losses(tmp_path / 'reference' / 'logs')
  got = _losses(tmp_path / 'job' / 'logs')  # process 0 alone writes the job's logs
  assert sorted(want) == sorted(got) == [1, 2]
  for step in want:
    assert abs(got[step] - want[step]) <= 1e-5 * abs(want[step]), (step, got, want)
  # One event file per train() call of the job (stop, then resume), none from process 1.
  assert len(glob.glob(str(tmp_path / 'job' / 'logs' / 'events.out.tfevents.*'))) == 2

  reference = np.load(tmp_path / 'reference_0.npz')
  adapter = load_adapter(str(tmp_path / 'job' / 'adapter'))
  exported = {k: np.asarray(v) for k, v in _flat(adapter.weights).items()}
  assert not (stale / 'stale.txt').exists()
  for pid in (0, 1):
    facts = json.loads((tmp_path / f'worker_{pid}.json').read_text())
    assert facts['steps'] == [[0, 1], [1, 2]]  # stopped after step 1, resumed from its checkpoint
    assert facts['trainable_processes'] == [0, 1]
    trained = np.load(tmp_path / f'worker_{pid}.npz')
    assert sorted(trained.files) == sorted(reference.files) == sorted(exported)
    for name in reference.files:
      np.testing.assert_allclose(trained[name], reference[name], atol=1e-5, err_msg=name)
      np.testing.assert_array_equal(exported[name], trained[name], err_msg=name)


def _flat(tree) -> dict:
  import jax
  return {jax.tree_util.keystr(path): x for path, x in jax.tree_util.tree_leaves_with_path(tree)}
