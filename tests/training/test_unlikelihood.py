"""Unlikelihood on tree roots: candidate sets by hand, the summed term against a slow reference."""

import math

import jax.numpy as jnp
import numpy as np

from apar_jax.apar_data.examples import plain_example, tree_example
from apar_jax.apar_data.packing import pack_rows, tree_root_tokens
from apar_jax.training.unlikelihood import (repeat_candidates, root_unlikelihood_sum,
                                            word_token_mask)

V, EOS, FORK, CHILD = 64, 2, 62, 63


def _batch(rows):
  return {k: jnp.asarray(v) for k, v in rows.take(np.arange(rows.num_rows)).items()}


def test_candidates_are_the_roots_earlier_answer_tokens():
  # Root: prompt 10 11 12 | 20 21 [Fork] 20 [Fork] 23 EOS (title token 20 written twice).
  ex = tree_example([10, 11, 12], [[20, 21], [20], [23]], [[30, 30], [32]], fork_id=FORK,
                    child_id=CHILD, eos_id=EOS)
  rows = pack_rows([ex, plain_example([1], [40, 41], EOS)], 48, 8)
  b = _batch(rows)
  roots = tree_root_tokens(b['branch_ids'], b['branch_parent'])
  cand = np.asarray(repeat_candidates(b['tokens'], b['targets'], b['weights'], b['branch_ids'],
                                      roots))[0]
  tokens, targets = rows.tokens[0], rows.targets[0]
  got = {int(t): sorted(int(tokens[s]) for s in np.flatnonzero(cand[t])) for t in range(48)
         if cand[t].any() or (roots[0, t] and rows.weights[0, t] > 0)}
  # By hand, position -> (target it predicts, candidates): earlier answer tokens minus the target.
  assert [int(targets[t]) for t in sorted(got)] == [20, 21, FORK, 20, FORK, 23, EOS]
  assert list(got.values()) == [[], [20], [20, 21], [21, FORK], [20, 21], [20, 21, FORK],
                                [20, 21, 23, FORK]]
  # Children (30 30) and the plain answer never get candidates.
  assert not cand[~np.asarray(roots[0])].any()


def _reference(rows, logits, allowed=None):
  """Loops over every row and target position, from the rows' arrays; `allowed`: candidate ids."""
  total = 0.0
  for b in range(rows.num_rows):
    ids, parent = rows.branch_ids[b], rows.branch_parent[b]
    for t in range(ids.shape[0]):
      bid = ids[t]
      if bid < 0 or rows.weights[b, t] <= 0 or bid not in set(parent.tolist()):
        continue
      first = min(s for s in range(ids.shape[0]) if ids[s] == bid and rows.weights[b, s] > 0)
      context = {int(rows.tokens[b, s]) for s in range(first + 1, t + 1) if ids[s] == bid}
      p = np.exp(logits[b, t] - np.log(np.sum(np.exp(logits[b, t].astype(np.float64)))))
      for c in context - {int(rows.targets[b, t])}:
        if allowed is not None and c not in allowed:
          continue
        total += -math.log(max(1.0 - p[c], 1e-6))
  return total


def test_sum_matches_the_slow_reference():
  rng = np.random.default_rng(0)
  examples = []
  for _ in range(5):
    n = int(rng.integers(2, 5))
    parts = [list(rng.integers(3, 12, rng.integers(1, 5))) for _ in range(n + 1)]  # few distinct
    details = [list(rng.integers(3, 12, rng.integers(2, 6))) for _ in range(n)]
    examples.append(tree_example(list(rng.integers(3, 60, 4)), parts, details, fork_id=FORK,
                                 child_id=CHILD, eos_id=EOS))
    examples.append(plain_example([5, 6], list(rng.integers(3, 12, 6)), EOS))
  rows = pack_rows(examples, 64, 12)
  assert rows.num_rows > 1
  logits = rng.normal(0, 3, (rows.num_rows, 64, V)).astype(np.float32)
  got = float(root_unlikelihood_sum(jnp.asarray(logits), _batch(rows)))
  want = _reference(rows, logits)
  assert want > 0
  np.testing.assert_allclose(got, want, rtol=1e-4)
  # A candidate mask keeps only its tokens (here the odd ids).
  vocab = np.arange(V) % 2 == 1
  got = float(root_unlikelihood_sum(jnp.asarray(logits), _batch(rows), jnp.asarray(vocab)))
  want_masked = _reference(rows, logits, allowed=set(np.flatnonzero(vocab).tolist()))
  assert 0 < want_masked < want
  np.testing.assert_allclose(got, want_masked, rtol=1e-4)


def test_word_tokens_hold_a_letter(load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  tok = load_tokenizer_from_config(load_config('tiny'))
  mask = word_token_mask(tok, tok.vocab_size + 3)
  assert mask.shape == (tok.vocab_size + 3,) and not mask[tok.vocab_size:].any()
  assert not mask[tok.fork_id] and not mask[tok.child_id] and not mask[list(tok.stop_ids)].any()
  for text, is_word in (('garden', True), (' Garden', True), ('**', False), (':', False),
                        ('\n', False), ('7', False)):
    ids = tok.encode(text)  # a word may split into pieces: each holds letters
    assert ids and all(mask[i] == is_word for i in ids), (text, ids)
