"""Two processes (gloo on 127.0.0.1, four fake CPU devices each, one 2x4 data x tensor mesh) train the
tiny model's LoRA adapter like one process: same loss and gradient norm at each step and same weights
(both as far as fp32 rounding of the two orders allows, Adam's conditioning included), one set of
logs, checkpoints that resume across the job, and one exported adapter (replacing a stale one)."""

import glob
import json
import os

import numpy as np
import pytest

from process_harness import run_job
from train_numerics import (adam_history, checkpoint_weights, gradient_error,
                            train_depths)

from apar_jax.testing.adam_conditioning import assert_weights_close
from apar_jax.testing.rounding import assert_close_across_orders
from apar_jax.weights.adapter_io import load_adapter

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'train_worker.py')
TIMEOUT_S = 200  # for all three processes together, on a loaded 2-core machine


LORA_RANK = 4  # tests/training/training_fixtures.py


def _metrics(log_dir) -> dict[int, dict]:
  lines = [json.loads(line) for line in open(os.path.join(log_dir, 'metrics.jsonl'))]
  steps = [r['step'] for r in lines]
  assert steps == sorted(set(steps)), f'metrics written more than once: {steps}'
  return {r['step']: r for r in lines}


def test_two_process_training_matches_single_process(tmp_path):
  stale = tmp_path / 'job' / 'adapter'
  stale.mkdir(parents=True)
  (stale / 'stale.txt').write_text('an older export')
  run_job(WORKER, tmp_path, TIMEOUT_S)

  want = _metrics(tmp_path / 'reference' / 'logs')
  got = _metrics(tmp_path / 'job' / 'logs')  # process 0 alone writes the job's logs
  assert sorted(want) == sorted(got) == [1, 2]
  reference = np.load(tmp_path / 'reference_0.npz')
  depth = train_depths(int(want[1]['targets']), sum(reference[k].size for k in reference.files),
                       LORA_RANK)
  for step in want:
    assert got[step]['targets'] == want[step]['targets']
    for key in ('loss', 'grad_norm'):
      assert_close_across_orders(np.float32(got[step][key]), np.float32(want[step][key]),
                                 terms=depth[key], err_msg=f'{key} of step {step}')
  # One event file per train() call of the job (stop, then resume), none from process 1.
  assert len(glob.glob(str(tmp_path / 'job' / 'logs' / 'events.out.tfevents.*'))) == 2

  history = adam_history(str(tmp_path / 'reference'), steps=2)

  def check(weights) -> None:
    for name in reference.files:
      assert_weights_close(weights[name], reference[name], history[name],
                           gradient_error(name, depth['grad']), err_msg=name)

  adapter = load_adapter(str(tmp_path / 'job' / 'adapter'))
  exported = {k: np.asarray(v) for k, v in _flat(adapter.weights).items()}
  assert not (stale / 'stale.txt').exists()
  for pid in (0, 1):
    facts = json.loads((tmp_path / f'worker_{pid}.json').read_text())
    assert facts['steps'] == [[0, 1], [1, 2]]  # stopped after step 1, resumed from its checkpoint
    assert facts['trainable_processes'] == [0, 1]
    trained = np.load(tmp_path / f'worker_{pid}.npz')
    assert sorted(trained.files) == sorted(reference.files) == sorted(exported)
    check(trained)
    for name in reference.files:
      np.testing.assert_array_equal(exported[name], trained[name], err_msg=name)
  # A real error shows: the job's second step taken with a 1% smaller learning rate.
  first = checkpoint_weights(str(tmp_path / 'reference'), step=1)
  with pytest.raises(AssertionError, match='moved apart'):
    check({k: first[k] + 0.99 * (trained[k] - first[k]) for k in reference.files})


def _flat(tree) -> dict:
  import jax
  return {jax.tree_util.keystr(path): x for path, x in jax.tree_util.tree_leaves_with_path(tree)}
