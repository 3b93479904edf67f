"""SmolLM2-135M in a two-process job (gloo on 127.0.0.1, four fake CPU devices each, one 2x4 data x
tensor mesh): `load_runtime` shards the real weights over both hosts and the engine's AR greedy
answers (`cli_api.generate_records`) are token-identical to a single process."""

import json
import os

import pytest

from process_harness import run_job

pytestmark = [pytest.mark.smollm2, pytest.mark.slow]

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'engine_smollm2_worker.py')
TIMEOUT_S = 300  # for all three processes together, on a loaded 2-core machine


def test_two_process_smollm2_engine_matches_single_process(tmp_path):
  run_job(WORKER, tmp_path, TIMEOUT_S)

  reference = json.loads((tmp_path / 'reference_0.json').read_text())
  assert reference['mesh_devices'] == 1
  assert [len(r['token_ids']) for r in reference['records']][1:] == [20, 20]  # budget reached
  assert 'Paris' in reference['records'][0]['text']
  for pid in (0, 1):
    got = json.loads((tmp_path / f'worker_{pid}.json').read_text())
    assert got['records'] == reference['records']  # same tokens, text and decode steps
    assert got['mesh_devices'] == 8
    assert got['mlp_processes'] == [0, 1]
    assert got['mlp_local_shards'] == [[576, 384]]  # MLP columns split over tensor within a host
