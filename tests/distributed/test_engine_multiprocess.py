"""The engine in a two-process job (gloo on 127.0.0.1, four fake CPU devices each, one 2x4 data x
tensor mesh from `make_global_mesh`) decodes the tiny model greedily, AR and APAR with forks, to the
tokens and branch trees of a single process: batched, one request at a time and through
`cli_api.generate_records`, and batched in the prompt-lookup speculative mode. The engine's slots are sharded over the data axis: each process holds
one data shard (its own KV pool and slots); requests are spread over both."""

import json
import os

from process_harness import run_job

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'engine_worker.py')
TIMEOUT_S = 200  # for all three processes together, on a loaded 2-core machine
PER_PROCESS = ('ar_placement', 'apar_placement', 'timed_arrival')
SHARD_STATS = ('data_shards', 'num_pages', 'free_pages_end', 'peak_kv_pages', 'steps', 'chunks')


def test_two_process_engine_matches_single_process(tmp_path):
  run_job(WORKER, tmp_path, TIMEOUT_S)

  reference = json.loads((tmp_path / 'reference_0.json').read_text())
  assert sum(r['forks'] for r in reference['apar_batched']) > 0  # APAR really forked
  assert sum(r['forks'] for r in reference['apar_records']) > 0
  assert all(r['forks'] == 0 for r in reference['ar_batched'])
  assert [r['token_ids'] for r in reference['lookup_batched']] == [
      r['token_ids'] for r in reference['ar_batched']]  # lossless: the speculative mode gives AR
  assert reference['timed_arrival'] == 'decoded'
  for pid in (0, 1):
    got = json.loads((tmp_path / f'worker_{pid}.json').read_text())
    assert set(got) == set(reference)
    for key in sorted(set(reference) - set(PER_PROCESS)):
      if key.endswith('_stats'):  # run totals: two shards' pools, requests side by side
        ref, two = reference[key], got[key]
        assert {k: v for k, v in two.items() if k not in SHARD_STATS} == {
            k: v for k, v in ref.items() if k not in SHARD_STATS}, (pid, key)
        assert ref['data_shards'] == 1 and two['data_shards'] == 2
        assert two['free_pages_end'] == two['num_pages'] == 2 * ref['num_pages']
        continue
      assert got[key] == reference[key], (pid, key)  # tokens, trees, text, per-request counters
    for mode in ('ar', 'apar'):  # the KV pools and outputs span both hosts; each holds its shard
      for placed in got[f'{mode}_placement'].values():
        assert placed == {'devices': 8, 'processes': [0, 1], 'shards': 2, 'local_shards': [pid]}
    assert 'timed arrivals' in got['timed_arrival'] and 'single process' in got['timed_arrival']
