"""The automatic tree builder: optimal paths for their size, smaller trees when steps cost more."""

import itertools

import numpy as np
import pytest

from tiny import tiny_model

from apar_jax.speculative import auto_tree
from apar_jax.speculative.tree import TokenTree

ACC = np.array([[0.6, 0.15, 0.08], [0.4, 0.12, 0.05], [0.3, 0.1, 0.04]])


def all_paths(depth, width):
  return [p for d in range(1, depth + 1) for p in itertools.product(range(width), repeat=d)]


@pytest.mark.parametrize('num_nodes', [1, 2, 4, 6, 8])
def test_greedy_paths_are_optimal_for_their_size(num_nodes):
  acc = ACC[:2, :2]  # small enough to enumerate every prefix-closed tree
  candidates = all_paths(2, 2)
  best = 0.0
  for subset in itertools.combinations(candidates, min(num_nodes - 1, len(candidates))):
    if all(p[:-1] in subset or len(p) == 1 for p in subset):
      best = max(best, auto_tree.expected_accepted(subset, acc))
  paths = auto_tree.greedy_paths(acc, num_nodes)
  TokenTree.from_paths(paths)  # prefix-closed
  assert auto_tree.expected_accepted(paths, acc) == pytest.approx(best)


def test_gain_curve_is_increasing_and_concave():
  gains = auto_tree.gain_curve(ACC, 20)
  assert gains[0] == 1.0 and len(gains) == 20
  steps = np.diff(gains)
  assert (steps >= 0).all() and (np.diff(steps) <= 1e-12).all()


def test_builder_picks_smaller_trees_when_step_cost_grows_faster():
  sizes = [1, 2, 4, 8, 16, 32]
  flat = {t: 0.020 + 0.0001 * t for t in sizes}  # memory-bound: extra tokens almost free
  steep = {t: 0.020 * t ** 0.8 for t in sizes}  # compute-bound: cost grows with T
  tree_flat, info_flat = auto_tree.build_auto_tree(ACC, flat, 32)
  tree_steep, info_steep = auto_tree.build_auto_tree(ACC, steep, 32)
  assert tree_steep.num_nodes < tree_flat.num_nodes
  assert info_flat['expected_accepted'] > info_steep['expected_accepted']
  assert tree_steep.num_nodes <= 3 and tree_flat.num_nodes >= 12
  # The choice maximises expected tokens per second over the measured range.
  gains = auto_tree.gain_curve(ACC, 32)
  rates = gains / auto_tree.interpolate_times(steep, np.arange(1, 33))
  assert tree_steep.num_nodes == int(np.argmax(rates)) + 1


def test_measure_step_times_runs_on_the_model():
  model, params = tiny_model(vocab=64, n_layers=2)
  times = auto_tree.measure_step_times(model, params, [1, 4], context=16, repeats=2,
                                       attention_impl='reference')
  assert set(times) == {1, 4} and all(t > 0 for t in times.values())


def test_bad_acceptance_tables():
  with pytest.raises(ValueError, match='\\[0, 1\\]'):
    auto_tree.greedy_paths(np.array([[1.5]]), 3)
  with pytest.raises(ValueError, match='\\[depth, topk\\]'):
    auto_tree.greedy_paths(np.array([0.5]), 3)
