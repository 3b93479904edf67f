"""Two processes on 127.0.0.1 (gloo, four fake CPU devices each) form one 2x4 (data x tensor) mesh with
`make_global_mesh`; the tiny model's forward sharded over it matches a single-process run."""

import json
import os

import numpy as np

from process_harness import run_job

from apar_jax.testing.accumulation_depth import forward_terms
from apar_jax.testing.rounding import assert_close_across_orders

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'two_process_worker.py')
TIMEOUT_S = 85  # for all three processes together
from conftest import load_config


def _worker_model_config():
  """The model of two_process_worker.tiny_setup (that module joins a job when imported)."""
  config = load_config('tiny')
  config.model.update(vocab_size=96, n_heads=8, n_kv_heads=4, head_dim=8, d_model=64, ffn_dim=128)
  return config.model


def test_two_processes_form_one_mesh_and_match_single_process(tmp_path):
  run_job(WORKER, tmp_path, TIMEOUT_S)

  reference = np.load(tmp_path / 'reference.npy')
  terms = forward_terms(_worker_model_config(), keys=10)
  for pid in (0, 1):
    assert_close_across_orders(np.load(tmp_path / f'logits_{pid}.npy'), reference, terms=terms,
                               err_msg=f'process {pid}')
    facts = json.loads((tmp_path / f'facts_{pid}.json').read_text())
    assert facts['rows'] == [[0], [1]]                # data row i lives on process i
    assert facts['main'] == (pid == 0)
    assert facts['logits_shape'] == [4, 10, 96]
    assert facts['logits_local_rows'] == [2 * pid]    # each process holds its half of the batch
    assert facts['q_shard_shapes'] == [[64, 2, 8]]    # q heads split four ways within the host
    assert facts['describe'] == f'process {pid}/2: 4 local cpu devices, 8 in all'
