"""Which draft tree each row bucket verifies: the one with the most expected tokens per second.

For a bucket of r rows and the best T-node tree of the drafter's acceptance table (a prefix of one
greedy order, `auto_tree.greedy_paths`, so the trees of all buckets nest), h levels deep, a step is
estimated to cost
    forward(r, Q) + draft(r, h, k)     (T = 1: forward(r, 1), the drafter does nothing)
from the measured `step_cost.StepCosts` (k: the top-k guesses per level the tree reads), where Q is
the query tokens per row: T, and for Hidden Transfer T in its first l of L layers and T (1 + h) in
the others, i.e. T + (1 - l / L) T h. The step emits E(T) tokens per row (`auto_tree.gain_curve`).
Each bucket takes the T maximising E(T) / cost; T = 1, the root alone, is "no draft": an AR / APAR
step. When no bucket drafts, the engine runs its base mode.
"""

import dataclasses
from typing import Sequence

import numpy as np

from apar_jax.speculative.auto_tree import gain_curve, greedy_paths, interpolate_times
from apar_jax.speculative.drafter import Drafter
from apar_jax.speculative.step_cost import StepCosts
from apar_jax.speculative.tree import TokenTree


@dataclasses.dataclass(frozen=True)
class BucketChoice:
  """The tree of one row bucket and the estimate behind it."""
  rows: int
  tree: TokenTree
  expected_tokens: float  # E(T): tokens per row and step
  step_s: float  # estimated seconds per step
  speedup: float  # estimated tokens/s over the root-only (no draft) step

  def describe(self) -> str:
    what = 'no draft' if self.tree.num_nodes == 1 else (
        f'T={self.tree.num_nodes} depth {self.tree.max_depth}')
    return (f'{self.rows} row(s): {what}, {self.expected_tokens:.2f} tokens/step expected, '
            f'{1e3 * self.step_s:.1f} ms/step, {self.speedup:.2f}x the no-draft step')


def query_tokens(tree: TokenTree, drafter: Drafter, n_layers: int) -> float:
  """Q: query tokens per row, weighted by the share of layers that see them."""
  t = tree.num_nodes
  if drafter.kind == 'hidden_transfer' and t > 1:
    return t + (1 - drafter.transfer_layer / n_layers) * t * tree.max_depth
  return float(t)


def step_seconds(costs: StepCosts, rows: int, tree: TokenTree, drafter: Drafter,
                 n_layers: int) -> float:
  """Estimated seconds of one step of `rows` rows verifying `tree`."""
  q = query_tokens(tree, drafter, n_layers)
  forward = float(interpolate_times(costs.forward[rows], np.asarray([q]))[0])
  if tree.num_nodes == 1 or rows not in costs.draft:
    return forward
  return forward + costs.draft[rows][(tree.max_depth, tree.topk_needed())]


def plan_trees(acc: np.ndarray, costs: StepCosts, drafter: Drafter, buckets: Sequence[int],
               max_nodes: int, n_layers: int) -> tuple[BucketChoice, ...]:
  """The best tree of at most `max_nodes` nodes for every bucket (ascending rows)."""
  acc = np.asarray(acc, np.float64)[:drafter.num_heads, :drafter.topk]
  gains = gain_curve(acc, max_nodes)
  trees = [TokenTree.from_paths(greedy_paths(acc, t)) for t in range(1, max_nodes + 1)]
  choices = []
  for rows in sorted(buckets):
    seconds = [step_seconds(costs, rows, tree, drafter, n_layers) for tree in trees]
    rates = [gains[tree.num_nodes - 1] / s for tree, s in zip(trees, seconds)]
    best = int(np.argmax(rates))
    tree = trees[best]
    choices.append(BucketChoice(rows, tree, float(gains[tree.num_nodes - 1]), seconds[best],
                                rates[best] * seconds[0]))
  return tuple(choices)


def forward_sizes(drafter: Drafter, max_nodes: int) -> list[int]:
  """The query-token counts to measure: powers of two up to the largest Q a tree can need."""
  top = max_nodes * (1 + drafter.num_heads) if drafter.kind == 'hidden_transfer' else max_nodes
  sizes, t = [], 1
  while t < top:
    sizes.append(t)
    t *= 2
  return sizes + [top]
