"""Token Recycling's table and tree filling against a slow, obviously-correct dict-and-loop version."""

import jax
import numpy as np
import pytest

from apar_jax.speculative.token_recycling import (CONTEXT, ROOT, TABLE, accepted_by_source,
                                                  empty_table, fill, refresh)
from apar_jax.speculative.tree import TokenTree, TreeError

V, K = 20, 3


def _slow_refresh(table, fed, logits, valid):
  table = {t: list(row) for t, row in enumerate(np.asarray(table))}
  for tok, row, ok in zip(fed, logits, valid):  # in order: a later row for the same token wins
    if ok:
      table[int(tok)] = [int(i) for i in np.argsort(-row, kind='stable')[:K]]
  return np.array([table[t] for t in range(V)])


def _slow_fill(table, root, tree, context):
  """Walks each path of the tree: spine from the context while it lasts, the rest from the table."""
  table = np.asarray(table)
  out, src = [], []
  for s in range(len(root)):
    tok, where = {(): int(root[s])}, {(): ROOT}
    ctx = [] if context is None else list(context[s])
    used = 0  # spine levels taken from the context
    while used < len(ctx) and ctx[used] >= 0 and (0,) * (used + 1) in tree.paths:
      used += 1
    for path in tree.paths:
      d = len(path)
      if all(r == 0 for r in path) and d <= used:
        tok[path], where[path] = int(ctx[d - 1]), CONTEXT
        continue
      rank = path[-1]
      parent = path[:-1]
      if rank > 0 and all(r == 0 for r in parent) and d <= used:
        rank -= 1  # the spine child of this parent came from the context
      parent_tok = tok[parent]
      tok[path] = int(table[parent_tok, rank]) if parent_tok >= 0 and rank < K else -1
      where[path] = TABLE
    order = [()] + list(tree.paths)
    out.append([tok[p] for p in order])
    src.append([where[p] for p in order])
  return np.array(out), np.array(src)


def test_refresh_keeps_the_later_row_and_skips_invalid_ones():
  rng = np.random.default_rng(0)
  table = np.asarray(empty_table(V, K))
  for _ in range(5):
    fed = rng.integers(0, V, size=9).astype(np.int32)  # repeats on purpose
    logits = rng.normal(size=(9, V)).astype(np.float32)
    valid = rng.random(9) < 0.7
    want = _slow_refresh(table, fed, logits, valid)
    table = np.asarray(refresh(table, fed, logits, valid))
    np.testing.assert_array_equal(table, want)
  assert (table >= 0).any() and (table == -1).any()


@pytest.mark.parametrize('paths', [
    [(0,), (1,), (2,), (0, 0), (0, 1), (1, 0), (0, 0, 0)],
    [(0,), (1,), (0, 1), (1, 0), (1, 1)],  # (0, 1) without (0, 0): no spine at level 2
    [(0,), (0, 0), (0, 0, 0), (0, 0, 0, 0)],
    [(0,), (1,), (2,), (3,), (0, 0), (0, 1), (0, 2), (0, 3)],  # width K + 1: fine with a context
])
@pytest.mark.parametrize('with_context', [False, True])
def test_fill_matches_slow_walk(paths, with_context):
  tree = TokenTree.from_paths(paths)
  if tree.topk_needed() > K and not with_context:
    with pytest.raises(TreeError, match='recycling table keeps'):
      fill(empty_table(V, K), np.zeros((1,), np.int32), tree)
    return
  rng = np.random.default_rng(len(paths))
  table = rng.integers(-1, V, size=(V, K)).astype(np.int32)
  root = rng.integers(0, V, size=6).astype(np.int32)
  context = None
  if with_context:
    context = rng.integers(0, V, size=(6, 3)).astype(np.int32)
    context[1, :] = -1  # no match
    context[2, 1:] = -1  # a match of one token
    context[3, 0] = -1  # no first token: nothing from the context
  tokens, source = fill(table, root, tree, context)
  want_tokens, want_source = _slow_fill(table, root, tree, context)
  np.testing.assert_array_equal(np.asarray(tokens), want_tokens)
  np.testing.assert_array_equal(np.asarray(source), want_source)
  if with_context:
    assert (np.asarray(source) == CONTEXT).any() and (np.asarray(source) == TABLE).any()


def test_a_recycled_tree_follows_what_the_table_learned():
  """Feed a chain a -> b -> c once; the filled spine from a is then b, c."""
  table = empty_table(V, K)
  chain = np.array([3, 7, 11], np.int32)
  logits = np.full((3, V), -5.0, np.float32)
  logits[0, 7] = logits[1, 11] = logits[2, 4] = 5.0  # after 3 comes 7, after 7 comes 11, ...
  table = refresh(table, chain, logits, np.ones((3,), bool))
  tokens, _ = fill(table, np.array([3], np.int32), TokenTree.chain(3))
  assert np.asarray(tokens).tolist() == [[3, 7, 11, 4]]
  jitted = jax.jit(fill, static_argnums=2)  # the tree is static: one compile per template
  assert np.asarray(jitted(table, np.array([3], np.int32), TokenTree.chain(3))[0]).tolist() == [
      [3, 7, 11, 4]]


def test_accepted_tokens_are_counted_per_source():
  source = np.array([[ROOT, CONTEXT, TABLE, TABLE], [ROOT, TABLE, CONTEXT, TABLE]])
  accepted = np.array([[0, 1, 3], [0, 2, -1]])
  counts = accepted_by_source(source, accepted, np.array([3, 2]))
  assert np.asarray(counts).tolist() == [2, 1]  # context: slot 0 node 1 + slot 1 node 2; table: 3
