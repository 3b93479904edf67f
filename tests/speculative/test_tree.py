"""TokenTree: arrays against a slow, obviously-correct build from the paths; validation errors."""

import itertools
import random

import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.speculative.tree import TokenTree, TreeError

MEDUSA_LIKE = [(0,), (1,), (2,), (0, 0), (0, 1), (1, 0), (0, 0, 0), (0, 1, 0), (2, 0), (0, 0, 1)]


def slow_reference(paths):
  """Node n >= 1 = the n-th path in (length, lexicographic) order; everything by definition."""
  nodes = [()] + sorted({tuple(p) for p in paths}, key=lambda p: (len(p), p))
  t = len(nodes)
  is_prefix = lambda a, b: b[:len(a)] == a  # noqa: E731  (a is an ancestor-or-self of b)
  mask = np.array([[is_prefix(nodes[j], nodes[i]) for j in range(t)] for i in range(t)])
  depth = np.array([len(p) for p in nodes])
  parent = np.array([-1] + [nodes.index(p[:-1]) for p in nodes[1:]])
  rank = np.array([-1] + [p[-1] for p in nodes[1:]])
  leaves = [p for p in nodes if not any(len(q) == len(p) + 1 and is_prefix(p, q) for q in nodes)]
  retrieve = {tuple(nodes.index(p[:d]) for d in range(len(p) + 1)) for p in leaves}
  return mask, depth, parent, rank, retrieve


def random_paths(rng, n, depth, width):
  paths = set()
  while len(paths) < n:
    p = tuple(rng.randrange(width) for _ in range(rng.randint(1, depth)))
    paths.update(p[:d] for d in range(1, len(p) + 1))
  return list(paths)


@pytest.mark.parametrize('paths', [MEDUSA_LIKE, [], [(0,)], [(0,), (0, 0), (0, 0, 0)],
                                   [(1,), (0,), (3,), (2,)]] +
                         [random_paths(random.Random(s), 12, 4, 3) for s in range(5)])
def test_tree_arrays_match_slow_reference(paths):
  tree = TokenTree.from_paths(paths)
  mask, depth, parent, rank, retrieve = slow_reference(paths)
  np.testing.assert_array_equal(tree.mask, mask)
  np.testing.assert_array_equal(tree.depth, depth)
  np.testing.assert_array_equal(tree.parent, parent)
  np.testing.assert_array_equal(tree.rank, rank)
  np.testing.assert_array_equal(tree.head, np.where(depth > 0, depth - 1, -1))
  rows = {tuple(int(x) for x in r if x >= 0) for r in tree.retrieve}
  assert rows == retrieve
  assert tree.retrieve.shape == (len(retrieve), depth.max() + 1)
  for p in range(tree.num_nodes):  # children: exactly the nodes whose parent is p, by rank
    kids = [int(c) for c in tree.children[p] if c >= 0]
    assert kids == sorted(np.nonzero(parent == p)[0].tolist(), key=lambda c: rank[c])


def test_order_of_input_paths_does_not_matter():
  shuffled = list(MEDUSA_LIKE)
  random.Random(0).shuffle(shuffled)
  assert TokenTree.from_paths(shuffled) == TokenTree.from_paths(MEDUSA_LIKE)
  assert hash(TokenTree.from_paths(shuffled)) == hash(TokenTree.from_paths(MEDUSA_LIKE))


def test_chain_and_full():
  chain = TokenTree.chain(4)
  assert chain.num_nodes == 5 and chain.max_depth == 4
  np.testing.assert_array_equal(chain.mask, np.tril(np.ones((5, 5), bool)))
  full = TokenTree.full(2, 3)
  assert full.num_nodes == 1 + 3 + 9
  assert set(full.paths) == set(itertools.product(range(3), repeat=1)) | set(
      itertools.product(range(3), repeat=2))


@pytest.mark.parametrize('paths,message', [
    ([(0, 1)], 'no parent path (0,)'),
    ([(0,), (0,)], 'more than once'),
    ([()], 'non-empty'),
    ([(0,), (-1,)], 'negative rank'),
])
def test_bad_paths_raise_clear_errors(paths, message):
  with pytest.raises(TreeError, match=message.replace('(', r'\(').replace(')', r'\)')):
    TokenTree.from_paths(paths)


def test_tree_deeper_or_wider_than_drafter():
  tree = TokenTree.from_paths(MEDUSA_LIKE)  # depth 3, ranks up to 2
  tree.check_drafter(3, 3)
  with pytest.raises(TreeError, match='3 levels deep but the drafter proposes only 2'):
    tree.check_drafter(2, 3)
  with pytest.raises(TreeError, match='top-2 tokens per position'):
    tree.check_drafter(4, 2)


def test_tree_too_large_for_capacity():
  tree = TokenTree.from_paths(MEDUSA_LIKE)
  tree.check_capacity(11)
  with pytest.raises(TreeError, match='11 nodes .* at most 8 tokens'):
    tree.check_capacity(8)
  with pytest.raises(TreeError):
    tree.block_mask(2, pad_to=8)


def test_candidates_positions_and_block_mask():
  tree = TokenTree.from_paths(MEDUSA_LIKE)
  draft = jnp.arange(2 * 3 * 3).reshape(2, 3, 3) + 100  # [S, K, topk]
  cand = np.asarray(tree.candidates(jnp.asarray([7, 8]), draft))
  assert cand[:, 0].tolist() == [7, 8]
  for n in range(1, tree.num_nodes):
    assert (cand[:, n] == np.asarray(draft)[:, tree.head[n], tree.rank[n]]).all()
  pos = np.asarray(tree.positions(jnp.asarray([10, 20])))
  np.testing.assert_array_equal(pos, np.stack([10 + tree.depth, 20 + tree.depth]))
  mask = np.asarray(tree.block_mask(2, pad_to=12))
  assert mask.shape == (2, 12, 12)
  np.testing.assert_array_equal(mask[0, :11, :11], tree.mask)
  assert mask[0, 11, 11] and not mask[0, 11, :11].any()
