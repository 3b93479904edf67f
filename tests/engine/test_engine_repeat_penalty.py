"""Repetition penalty and no-repeat n-gram in the engine (AR and APAR) against the slow numpy
reference, batch invariance next to requests without them, and the requests it refuses."""

import dataclasses
import functools

import numpy as np
import pytest

import numpy_reference as ref
from apar_jax.engine import Engine, Request, tree_signature
from tiny_model import CHILD, EOS, FORK, IDS, FakeTokenizer, tiny_config

PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60))]
NEW = 16
SETTINGS = [(1.5, 0), (1.0, 2), (1.3, 3)]  # (repetition_penalty, no_repeat_ngram)


SYMBOLS = tuple(range(0, 64, 2))  # the tiny vocabulary's stand-in for tokens without letters


def _engine(params, mode, **caps):
  return Engine(tiny_config(max_slots=32, num_pages=400, **caps), mode, params=params,
                control_ids=dataclasses.replace(IDS, symbols=SYMBOLS), tokenizer=FakeTokenizer())


def _reference(engine, params, prompt, penalty, ngram, apar, spared=()):
  adjust = functools.partial(_adjust, penalty=penalty, ngram=ngram, spared=spared)
  return ref.apar_greedy(params, engine.config.model, prompt, fork_id=FORK, child_id=CHILD,
                         stop_ids=(EOS,), max_new=NEW, max_depth=1 if apar else 0,
                         slot_capacity=engine.caps.slot_capacity, adjust=adjust)


def _adjust(logits, own, penalty, ngram, spared):
  return ref.repeat_penalized(logits, own, penalty, ngram, exempt=(FORK, CHILD), spared=spared)


@pytest.mark.parametrize('mode', ['ar', 'apar'])
def test_penalties_equal_slow_reference(forky_params, mode):
  engine = _engine(forky_params, mode, row_buckets=True)
  requests = [Request(token_ids=p, max_new_tokens=NEW, repetition_penalty=pen, no_repeat_ngram=n)
              for p in PROMPTS for pen, n in SETTINGS]
  plain = engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS])
  results = engine.generate(requests + [Request(token_ids=PROMPTS[0], max_new_tokens=NEW)])
  assert results[-1].token_ids == plain[0].token_ids  # a request without penalties is unchanged
  changed = 0
  for req, got in zip(requests, results):
    want = _reference(engine, forky_params, list(req.token_ids), req.repetition_penalty,
                      req.no_repeat_ngram, mode == 'apar')
    assert tree_signature(got.branches) == ref.signature(want)
    changed += got.token_ids != plain[PROMPTS.index(list(req.token_ids))].token_ids
  assert changed >= len(requests) // 2  # the penalties do change the forky model's answers
  if mode == 'apar':
    assert sum(r.forks for r in results) > 0


@pytest.mark.parametrize('mode', ['ar', 'apar'])
def test_symbols_spared_equal_slow_reference(forky_params, mode):
  engine = _engine(forky_params, mode)
  requests = [Request(token_ids=p, max_new_tokens=NEW, repetition_penalty=pen, no_repeat_ngram=n,
                      penalize_symbols=False) for p in PROMPTS for pen, n in SETTINGS]
  full = engine.generate([dataclasses.replace(r, penalize_symbols=True) for r in requests])
  results = engine.generate(requests)
  for req, got in zip(requests, results):
    want = _reference(engine, forky_params, list(req.token_ids), req.repetition_penalty,
                      req.no_repeat_ngram, mode == 'apar', spared=SYMBOLS)
    assert tree_signature(got.branches) == ref.signature(want)
  assert any(a.token_ids != b.token_ids for a, b in zip(results, full))  # sparing changes answers


def test_ngram_ban_leaves_no_repeated_ngram(forky_params):
  engine = _engine(forky_params, 'ar')
  [got] = engine.generate([Request(token_ids=PROMPTS[2], max_new_tokens=NEW, no_repeat_ngram=2)])
  pairs = list(zip(got.token_ids, got.token_ids[1:]))
  assert len(pairs) == len(set(pairs)) and len(got.token_ids) > 4


@pytest.mark.parametrize('mode,kwargs,match', [
    ('ar', dict(repetition_penalty=0.0), 'repetition_penalty'),
    ('ar', dict(no_repeat_ngram=1), 'no_repeat_ngram'),
    ('lookup', dict(no_repeat_ngram=3), 'does not take them'),
])
def test_bad_requests_are_refused_before_decoding(forky_params, mode, kwargs, match):
  engine = _engine(forky_params, mode)
  with pytest.raises(ValueError, match=match):
    engine.prepare(0, Request(token_ids=PROMPTS[0], max_new_tokens=NEW, **kwargs))

