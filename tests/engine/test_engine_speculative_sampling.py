"""Speculative rejection sampling inside the engine preserves the base distribution: on a model with
an 8-token vocabulary the joint distribution of the first 3 generated tokens (sequences cut at EOS)
matches the exact AR distribution (chi-square goodness of fit, fixed seeds, p > 0.01), for prompt
lookup, for a Medusa tree and for token recycling (its table shared by all 3000 requests), with drafts
that are often accepted."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from apar_jax.engine import ControlIds, Engine, Request
from apar_jax.model import CausalSpec, build_model
from tiny_model import FakeTokenizer, tiny_config

VOCAB, FORK, CHILD, EOS = 8, 5, 6, 7
IDS = ControlIds(FORK, CHILD, (EOS,))
PROMPT = [1, 2, 3, 1, 2, 3, 1, 2]
NEW, SAMPLES = 3, 3000
SPEC = {'lookup': dict(tree='chain', lookup_num_draft=3),
        'medusa': dict(tree='(0,),(1,),(2,),(0,0),(0,1),(1,0),(0,0,0)', topk=3, max_tree_nodes=8),
        'token_recycling': dict(tree='(0,),(1,),(2,),(0,0),(0,1),(1,0),(0,0,0)', recycling_depth=3,
                                recycling_topk=3, max_tree_nodes=8)}


@pytest.fixture(scope='module')
def small_vocab():
  config = tiny_config(max_slots=64, max_requests=64, num_pages=400, pages_per_slot=6,
                       max_new_tokens=NEW, chunk_steps=4)
  config.model.vocab_size = VOCAB
  model = build_model(config.model)
  params = model.init(jax.random.key(3), jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32),
                      CausalSpec())['params']
  params = jax.tree.map(jnp.asarray, jax.tree.map(np.asarray, __import__('flax').linen.unbox(params)))
  params['lm_head']['kernel'] = params['lm_head']['kernel'] * 3.0  # moderately peaked
  return config, model, params


def exact_distribution(model, params):
  """{sequence: probability} of the first NEW tokens of AR sampling (T = 1, `[Fork]`/`[Child]`
  banned, a sequence ends at EOS)."""
  def probs(prefix):
    toks = jnp.asarray([PROMPT + list(prefix)], jnp.int32)
    pos = jnp.arange(toks.shape[1], dtype=jnp.int32)[None]
    logits = np.asarray(model.apply({'params': params}, toks, pos, CausalSpec()).logits[0, -1],
                        np.float64)
    logits[[FORK, CHILD]] = -np.inf
    e = np.exp(logits - logits.max())
    return e / e.sum()

  out = {}

  def walk(prefix, p):
    if len(prefix) == NEW or (prefix and prefix[-1] == EOS):
      out[tuple(prefix)] = p
      return
    for t, q in enumerate(probs(prefix)):
      if q > 0:
        walk(prefix + [t], p * q)

  walk([], 1.0)
  return out


def sample(config, params, mode, **kw):
  if mode != 'ar':
    config.speculative = SPEC[mode]
  engine = Engine(config, mode, params=params, control_ids=IDS, tokenizer=FakeTokenizer(), **kw)
  results = engine.generate([Request(token_ids=PROMPT, max_new_tokens=NEW, temperature=1.0,
                                     seed=i) for i in range(SAMPLES)])
  seqs = [tuple(r.branches[0].tokens) for r in results]
  accepted = np.mean([r.mean_accepted_tokens for r in results])
  return seqs, accepted


def chi_square_p(seqs, exact):
  cells = sorted(exact, key=lambda s: -exact[s])
  counts = {s: 0 for s in cells}
  for s in seqs:
    counts[s] += 1  # a sequence outside the support raises KeyError
  expected = np.asarray([exact[s] * len(seqs) for s in cells])
  observed = np.asarray([counts[s] for s in cells], np.float64)
  big = expected >= 5  # pool the sparse cells
  exp = np.append(expected[big], expected[~big].sum())
  obs = np.append(observed[big], observed[~big].sum())
  return stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue


@pytest.mark.parametrize('mode', ['ar', 'lookup', 'medusa', 'token_recycling'])
def test_first_three_tokens_follow_the_base_distribution(small_vocab, mode):
  config, model, params = small_vocab
  exact = exact_distribution(model, params)
  assert abs(sum(exact.values()) - 1) < 1e-9 and len(exact) > 20
  kw = {}
  if mode == 'medusa':
    from apar_jax.speculative.medusa import init_medusa
    kw = dict(drafter_params=init_medusa(3, int(config.model.d_model)))
  seqs, accepted = sample(config.copy_and_resolve_references(), params, mode, **kw)
  p = chi_square_p(seqs, exact)
  assert p > 0.01, (mode, p)
  if mode != 'ar':
    assert accepted > 1.1, accepted  # drafts really get accepted (and rejected); at most 3
  else:
    assert accepted == 1.0
  assert len(set(seqs)) > 15
