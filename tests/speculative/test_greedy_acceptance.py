"""Greedy acceptance against a slow Python walk; stop-token cutting; the greedy special cases of
rejection sampling and typical acceptance."""

import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.speculative import acceptance, rejection
from apar_jax.speculative.tree import TokenTree

# Jitted (eager dispatch of many small ops is slow); tree and stop ids are static.
greedy_accept = jax.jit(acceptance.greedy_accept, static_argnums=(2, 3))
typical_accept = jax.jit(acceptance.typical_accept, static_argnums=(2, 5))
rejection_accept = jax.jit(rejection.rejection_accept, static_argnums=(2, 7))

V = 16
TREES = [TokenTree.from_paths([(0,), (1,), (2,), (0, 0), (0, 1), (1, 0), (0, 0, 0), (0, 1, 0),
                               (2, 0), (0, 0, 1)]),
         TokenTree.chain(4), TokenTree.full(2, 3), TokenTree.from_paths([])]


def make_case(tree, seed, hit_rate=0.7):
  """Random logits; candidates that often equal the argmax at their parent (siblings distinct)."""
  rng = np.random.default_rng(seed)
  s = 6
  logits = rng.normal(size=(s, tree.num_nodes, V)).astype(np.float32)
  cand = np.zeros((s, tree.num_nodes), np.int32)
  cand[:, 0] = rng.integers(0, V, s)
  for b in range(s):
    for p in range(tree.num_nodes):
      kids = [int(c) for c in tree.children[p] if c >= 0]
      target = int(np.argmax(logits[b, p]))
      others = [t for t in rng.permutation(V) if t != target]
      hit = rng.random() < hit_rate
      hit_at = rng.integers(len(kids)) if kids else 0
      for i, c in enumerate(kids):
        cand[b, c] = target if hit and i == hit_at else others.pop()
  return cand, logits


def slow_greedy(cand, logits, tree, stops):
  """Walk from the root: descend to the child equal to the argmax; stop tokens end the walk."""
  out = []
  for b in range(cand.shape[0]):
    cur, committed, tokens = 0, [0], []
    while True:
      target = int(np.argmax(logits[b, cur]))
      kids = [int(c) for c in tree.children[cur] if c >= 0 and cand[b, c] == target]
      if not kids:
        nxt = target
        break
      c = kids[0]
      if int(cand[b, c]) in stops:
        nxt = int(cand[b, c])
        break
      committed.append(c)
      tokens.append(int(cand[b, c]))
      cur = c
    out.append((committed, tokens + [nxt]))
  return out


def check_against_reference(acc, cand, logits, tree, stops):
  ref = slow_greedy(cand, logits, tree, stops)
  nodes, num = np.asarray(acc.nodes), np.asarray(acc.num_nodes)
  toks, nxt = np.asarray(acc.tokens), np.asarray(acc.next_token)
  for b, (committed, emitted) in enumerate(ref):
    assert num[b] == len(committed) == len(emitted)
    assert nodes[b, :num[b]].tolist() == committed and (nodes[b, num[b]:] == -1).all()
    assert toks[b, :num[b]].tolist() == emitted and (toks[b, num[b]:] == -1).all()
    assert nxt[b] == emitted[-1]


@pytest.mark.parametrize('tree', TREES, ids=lambda t: f'T{t.num_nodes}')
@pytest.mark.parametrize('seed', range(4))
def test_greedy_matches_slow_walk(tree, seed):
  cand, logits = make_case(tree, seed)
  stops = (3, 5) if seed % 2 else ()
  acc = greedy_accept(jnp.asarray(cand), jnp.asarray(logits), tree, stops)
  check_against_reference(acc, cand, logits, tree, stops)


@pytest.mark.parametrize('tree', TREES[:2], ids=lambda t: f'T{t.num_nodes}')
def test_rejection_and_typical_at_temperature_zero_are_greedy(tree):
  cand, logits = make_case(tree, 7)
  s = cand.shape[0]
  stops = (3, 5)
  keys = jax.random.split(jax.random.key(0), s)
  zeros = jnp.zeros((s,), jnp.float32)
  ref = greedy_accept(jnp.asarray(cand), jnp.asarray(logits), tree, stops)
  rej = rejection_accept(jnp.asarray(cand), jnp.asarray(logits), tree, keys, zeros,
                         jnp.zeros((s,), jnp.int32), jnp.ones((s,), jnp.float32), stops)
  typ = typical_accept(jnp.asarray(cand), jnp.asarray(logits), tree, keys, zeros, stops)
  for got in (rej, typ):
    for field in ('nodes', 'num_nodes', 'next_token', 'tokens'):
      np.testing.assert_array_equal(np.asarray(getattr(got, field)), np.asarray(getattr(ref, field)))


def test_stop_token_ends_the_step_and_is_not_committed():
  tree = TokenTree.chain(3)
  logits = np.full((3, 4, V), -5.0, np.float32)
  # Base argmax after each node: root -> 4, node1 -> 9 (a stop id), node2 -> 6, node3 -> 7.
  for n, t in enumerate([4, 9, 6, 7]):
    logits[:, n, t] = 5.0
  cand = np.array([[1, 4, 9, 6],    # accepts 4, then the stop 9: emits [4, 9], commits root+node1
                   [9, 4, 2, 6],    # the root may be a stop id (a fed [Fork]): it never halts
                   [1, 9, 6, 7]],   # draft 9 at depth 1 does not match 4: emits the bonus 4
                  np.int32)
  cand[1, 2] = 9
  acc = greedy_accept(jnp.asarray(cand), jnp.asarray(logits), tree, (9,))
  assert np.asarray(acc.num_nodes).tolist() == [2, 2, 1]
  assert np.asarray(acc.next_token).tolist() == [9, 9, 4]
  assert np.asarray(acc.tokens).tolist() == [[4, 9, -1, -1], [4, 9, -1, -1], [4, -1, -1, -1]]
  assert np.asarray(acc.nodes).tolist() == [[0, 1, -1, -1], [0, 1, -1, -1], [0, -1, -1, -1]]
  # Without stop ids the whole chain is accepted (+ the bonus).
  full = greedy_accept(jnp.asarray(cand[:1]), jnp.asarray(logits[:1]), tree)
  assert np.asarray(full.tokens).tolist() == [[4, 9, 6, 7]]


def test_missing_candidates_are_never_accepted():
  tree = TokenTree.chain(2)
  logits = np.zeros((1, 3, V), np.float32)
  logits[0, :, 0] = 1.0  # argmax 0 everywhere
  cand = jnp.asarray([[0, -1, 0]], jnp.int32)
  acc = greedy_accept(cand, jnp.asarray(logits), tree)
  assert int(acc.num_nodes[0]) == 1 and int(acc.next_token[0]) == 0
