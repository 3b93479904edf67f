"""The run-time acceptance table (`speculative.acceptance_tally`) against a loop over nodes."""

import numpy as np
import pytest

from apar_jax.defaults import speculative_config
from apar_jax.engine.setup.speculative import acceptance_table
from apar_jax.speculative import acceptance_tally
from apar_jax.speculative.tree import TokenTree

TREE = TokenTree.from_paths([(0,), (1,), (0, 0), (0, 1), (1, 0), (0, 0, 0)])


def slow_count(tree, cand, nodes, num_committed, live, levels, ranks):
  """Node by node: tried = parent committed and a candidate; kept = also committed."""
  out = np.zeros((2, levels, ranks), np.int64)
  for s in range(cand.shape[0]):
    if not live[s]:
      continue
    committed = {int(n) for n in nodes[s, :num_committed[s]] if n >= 0}
    for n in range(1, tree.num_nodes):
      if int(tree.parent[n]) in committed and cand[s, n] >= 0:
        level, rank = int(tree.depth[n]) - 1, int(tree.rank[n])
        out[0, level, rank] += 1
        out[1, level, rank] += n in committed
  return out


def random_step(rng, s):
  """Committed paths of random length (root first, a valid tree path), some missing candidates."""
  cand = rng.integers(0, 50, size=(s, TREE.num_nodes)).astype(np.int32)
  cand[rng.random(cand.shape) < 0.15] = -1
  cand[:, 0] = rng.integers(0, 50, size=s)
  paths = TREE.retrieve[rng.integers(0, TREE.retrieve.shape[0], size=s)]  # [S, D + 1]
  length = np.maximum((paths >= 0).sum(1), 1)
  num = rng.integers(1, length + 1)  # committed nodes of each row
  nodes = np.where(np.arange(paths.shape[1])[None] < num[:, None], paths, -1).astype(np.int32)
  emitted = np.minimum(num, rng.integers(0, 5, size=s)).astype(np.int32)  # a budget may cut
  return cand, nodes, emitted, rng.random(s) < 0.8


def test_count_matches_a_loop_over_nodes_across_steps():
  rng = np.random.default_rng(0)
  levels, ranks = 4, 3
  tally = acceptance_tally.empty(levels, ranks)
  want = np.zeros((2, levels, ranks), np.int64)
  for _ in range(20):
    cand, nodes, emitted, live = random_step(rng, 6)
    tally = acceptance_tally.count(tally, TREE, cand, nodes, emitted, live)
    want += slow_count(TREE, cand, nodes, emitted, live, levels, ranks)
  np.testing.assert_array_equal(np.asarray(tally), want)
  assert want[0].sum() > want[1].sum() > 0


def test_rates_are_kept_over_tried_and_nan_where_never_tried():
  tally = np.zeros((2, 2, 2), np.int64)
  tally[:, 0, 0] = (10, 4)
  tally[:, 1, 0] = (4, 0)
  rate = acceptance_tally.rates(tally)
  assert rate[0, 0] == 0.4 and rate[1, 0] == 0.0
  assert np.isnan(rate[0, 1]) and np.isnan(rate[1, 1])
  table = acceptance_tally.describe(tally)
  assert '| 1 | 0.400 (10) | - |' in table and '| 2 | 0.000 (4) | - |' in table


def test_a_written_table_reaches_the_tree_planner_where_it_was_measured(tmp_path):
  tally = np.zeros((2, 2, 2), np.int64)
  tally[:, 0, 0] = (10, 7)  # level 1, rank 0 measured; the rest never tried
  path = str(tmp_path / 'acceptance.json')
  acceptance_tally.write(path, {'token_recycling': tally}, source='test')
  np.testing.assert_allclose(acceptance_tally.read(path, 'token_recycling'),
                             [[0.7, np.nan], [np.nan, np.nan]])
  assert acceptance_tally.read(path, 'lookup') is None
  sec = speculative_config(recycling_acceptance=((0.2, 0.1), (0.3, 0.05)), recycling_depth=2,
                           recycling_topk=2)
  prior = acceptance_table(sec, 'token_recycling', 3, 2, None)
  sec.acceptance_file = path
  got = acceptance_table(sec, 'token_recycling', 3, 2, None)
  np.testing.assert_allclose(got, [[0.7, 0.1], [0.3, 0.05], [0.3, 0.05]])
  np.testing.assert_allclose(got[1:], prior[1:])
  assert acceptance_table(sec, 'lookup', 2, 1, None).tolist() == [[0.33], [0.33]]


def test_a_missing_or_foreign_acceptance_file_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='--acceptance_out'):
    acceptance_tally.read(str(tmp_path / 'nope.json'), 'lookup')
  bad = tmp_path / 'bad.json'
  bad.write_text('[1, 2]')
  with pytest.raises(ValueError, match='not an acceptance file'):
    acceptance_tally.read(str(bad), 'lookup')
