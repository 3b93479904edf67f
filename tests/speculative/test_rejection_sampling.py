"""Rejection sampling over a tree is lossless: the first tokens it emits follow the base distribution.

1. A Markov "model" (next-token logits depend on the last token only, vocabulary 6, one stop token):
   the joint of the first 3 emitted tokens over several steps, with temperature / top-k / top-p, is
   compared to the exact AR joint with a chi-square test.
2. The tiny transformer end to end (reference decoder, Medusa drafts, vocabulary 8): the joint of the
   first 3 generated tokens against the exact AR joint computed by enumerating prefixes.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from chi_square import chi_square_p
from tiny import tiny_model

from apar_jax.model import CausalSpec
from apar_jax.speculative import medusa
from apar_jax.speculative.drafter import Drafter
from apar_jax.testing.speculative_reference import Settings, SpeculativeReferenceDecoder
from apar_jax.speculative.rejection import rejection_accept
from apar_jax.speculative.tree import TokenTree

END = -1


def filtered_probs(logits, temperature, top_k, top_p):
  """Numpy reference of the AR sampling distribution (temperature, then top-k, then top-p)."""
  z = np.asarray(logits, np.float64) / temperature
  order = np.argsort(-z)
  keep = np.zeros_like(z, bool)
  k = len(z) if top_k == 0 else top_k
  p = np.exp(z[order] - z[order].max())
  p /= p.sum()
  before = np.cumsum(p) - p
  n_keep = min(k, max(1, int(np.sum(before < top_p))))
  keep[order[:n_keep]] = True
  q = np.where(keep, np.exp(z - z.max()), 0.0)
  return q / q.sum()


def exact_joint(next_probs, stops, vocab):
  """{(x1, x2, x3): prob} of the first three AR tokens; END pads after a stop token."""
  joint = {}

  def walk(prefix, prob):
    if len(prefix) == 3 or (prefix and prefix[-1] in stops):
      key = tuple(prefix) + (END,) * (3 - len(prefix))
      joint[key] = joint.get(key, 0.0) + prob
      return
    p = next_probs(tuple(prefix))
    for x in range(vocab):
      if p[x] > 0:
        walk(prefix + [x], prob * p[x])

  walk([], 1.0)
  return joint


def compare(samples, joint):
  cells = sorted(joint)
  index = {c: i for i, c in enumerate(cells)}
  counts = np.zeros(len(cells) + 1)
  for row in samples:
    counts[index.get(tuple(row), len(cells))] += 1  # unknown sequences land in a 0-prob cell
  probs = np.array([joint[c] for c in cells] + [0.0])
  return chi_square_p(counts, probs)


# ---- 1. Markov model, acceptance logic over several steps ----------------------------------------
V, STOP = 6, 5
TREE = TokenTree.from_paths([(0,), (1,), (0, 0), (0, 1), (1, 0), (0, 0, 0)])


@jax.jit
def markov_step(m, last, keys, step, temperature, top_k, top_p):
  """One speculative step on the Markov chain `m` [V, V] -> Acceptance (one compile for all cases)."""
  greedy_next = jnp.argmax(m, axis=-1)
  order = jnp.argsort(-m, axis=-1)  # [V, V] tokens by logit
  heads, cur = [], last
  for _ in range(TREE.max_depth):  # head i: top-2 after the greedy chain of length i
    heads.append(order[cur, :2])
    cur = greedy_next[cur]
  cand = TREE.candidates(last, jnp.stack(heads, axis=1))
  step_keys = jax.vmap(lambda k: jax.random.fold_in(k, step))(keys)
  return rejection_accept(cand, m[cand], TREE, step_keys, temperature, top_k, top_p, (STOP,))


def markov_spec_first3(m, root, keys, temperature, top_k, top_p):
  """Speculative decoding of the Markov chain; the first 3 emitted tokens [S, 3] (END after a stop)."""
  s = root.shape[0]
  out = np.full((s, 3), END, np.int64)
  n = np.zeros((s,), np.int64)
  done = np.zeros((s,), bool)
  last = root
  settings = (jnp.full((s,), temperature, jnp.float32), jnp.full((s,), top_k, jnp.int32),
              jnp.full((s,), top_p, jnp.float32))
  for step in range(3):  # every step emits >= 1 token
    acc = markov_step(m, last, keys, step, *settings)
    tokens, num = np.asarray(acc.tokens), np.asarray(acc.num_nodes)
    for j in range(TREE.max_depth + 1):
      put = ~done & (j < num) & (n < 3)
      rows = np.nonzero(put)[0]
      out[rows, n[rows]] = tokens[rows, j]
      n += put
      done |= put & (tokens[:, j] == STOP)
    last = acc.next_token
  return out


@pytest.mark.parametrize('temperature,top_k,top_p', [(1.0, 0, 1.0), (0.7, 3, 1.0), (1.3, 0, 0.8)])
def test_markov_joint_of_first_three_tokens_matches_ar(temperature, top_k, top_p):
  rng = np.random.default_rng(0)
  m = rng.normal(size=(V, V)).astype(np.float32) * 1.5
  root = 2
  n = 40000
  samples = markov_spec_first3(jnp.asarray(m), jnp.full((n,), root, jnp.int32),
                               jax.random.split(jax.random.key(1), n), temperature, top_k, top_p)

  def next_probs(prefix):
    last = prefix[-1] if prefix else root
    return filtered_probs(m[last], temperature, top_k, top_p)

  joint = exact_joint(next_probs, (STOP,), V)
  assert compare(samples, joint) > 0.01
  # The test has power: a wrong distribution (no temperature) is rejected.
  wrong = exact_joint(lambda p: filtered_probs(m[p[-1] if p else root], 1.0, 0, 1.0), (STOP,), V)
  if temperature != 1.0:
    assert compare(samples, wrong) < 1e-6


# ---- 2. tiny transformer, reference decoder ---------------------------------------------------
def test_tiny_transformer_joint_of_first_three_tokens_matches_ar():
  vocab = 8
  model, params = tiny_model(vocab=vocab, n_layers=2, seed=3, head_scale=10.0, tie=True)
  prompt = [1, 2, 3, 4]
  temperature = 1.0

  def next_probs_table():
    seqs = [prompt + list(p) for p in itertools.product(range(vocab), repeat=2)]
    toks = jnp.asarray(seqs, jnp.int32)
    pos = jnp.broadcast_to(jnp.arange(toks.shape[1]), toks.shape)
    logits = np.asarray(model.apply({'params': params}, toks, pos, CausalSpec()).logits)
    table = {(): logits[0, len(prompt) - 1]}
    for i, p in enumerate(itertools.product(range(vocab), repeat=2)):
      table[p[:1]] = logits[i, len(prompt)]
      table[p] = logits[i, len(prompt) + 1]
    return table

  table = next_probs_table()
  joint = exact_joint(lambda p: filtered_probs(table[p], temperature, 0, 1.0), (), vocab)
  drafter = Drafter('medusa', num_heads=2, topk=2)
  dec = SpeculativeReferenceDecoder(model, params, drafter, medusa.init_medusa(2, 32),
                                    TokenTree.full(2, 2), stop_ids=(), acceptance='rejection')
  n = 20000
  result = dec.generate([prompt] * n, 3, Settings(temperature=temperature, seed=5))
  samples = np.asarray(result['tokens'])
  assert samples.shape == (n, 3)
  assert result["mean_accepted_tokens"] > 1.1  # drafts do get accepted (about 1.2)
  assert compare(samples, joint) > 0.01
