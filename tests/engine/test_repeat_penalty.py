"""`penalize_repeats` against the slow, obviously-correct version of both rules in numpy_reference."""

import numpy as np
import pytest

import numpy_reference as ref

from apar_jax.repeat_penalty import (MAX_NGRAM, check_repeat_settings, letterless_ids,
                                     ngram_completions, penalize_repeats)

V = 12


def _case(rng, length):
  # A small alphabet makes repeats (and n-gram hits) common.
  return [int(t) for t in rng.integers(0, 4, size=length)]


@pytest.mark.parametrize('seed', range(6))
def test_matches_slow_reference(seed):
  rng = np.random.default_rng(seed)
  b, l = 7, 20
  lengths = rng.integers(0, l + 1, size=b)
  histories = np.zeros((b, l), np.int32)
  rows = []
  for i in range(b):
    h = _case(rng, lengths[i])
    histories[i, :len(h)] = h
    histories[i, len(h):] = rng.integers(0, V, size=l - len(h))  # garbage past the length
    rows.append(h)
  logits = rng.normal(scale=3.0, size=(b, V)).astype(np.float32)
  penalty = np.array([1.0, 1.3, 0.8, 1.3, 2.0, 1.0, 1.1], np.float32)
  ngram = np.array([0, 0, 2, 3, 4, 5, MAX_NGRAM], np.int32)
  exempt = (3,)
  got = np.asarray(penalize_repeats(logits, histories, lengths.astype(np.int32), penalty, ngram,
                                    exempt))
  for i in range(b):
    want = ref.repeat_penalized(logits[i], rows[i], float(penalty[i]), int(ngram[i]), exempt)
    np.testing.assert_allclose(got[i], np.asarray(want, np.float32), rtol=1e-6)


@pytest.mark.parametrize('seed', range(3))
def test_symbols_are_spared_only_where_asked(seed):
  rng = np.random.default_rng(seed)
  b, l = 6, 16
  histories = rng.integers(0, 6, size=(b, l)).astype(np.int32)
  lengths = rng.integers(0, l + 1, size=b).astype(np.int32)
  histories[0, 0], lengths[0] = 0, max(lengths[0], 4)  # a spared row that wrote symbol 0
  logits = rng.normal(scale=3.0, size=(b, V)).astype(np.float32)
  penalty = np.full((b,), 1.4, np.float32)
  ngram = np.array([0, 3, 0, 3, 2, 0], np.int32)
  spare = np.array([True, True, False, False, True, False])
  symbols, exempt = (0, 2, 4), (5,)
  got = np.asarray(penalize_repeats(logits, histories, lengths, penalty, ngram, exempt, symbols,
                                    ~spare))
  for i in range(b):
    row = histories[i, :lengths[i]].tolist()
    want = ref.repeat_penalized(logits[i], row, 1.4, int(ngram[i]), exempt,
                                spared=symbols if spare[i] else ())
    np.testing.assert_allclose(got[i], np.asarray(want, np.float32), rtol=1e-6)
  assert got[0, 0] == logits[0, 0]  # written before, spared


def test_letterless_ids_are_the_tokens_without_a_letter():
  texts = ['the', ' 12', '**', ':\n\n', ' É', '\ufffd', 'x2', '']
  assert letterless_ids(texts) == (1, 2, 3, 5, 7)


def test_off_settings_keep_logits_exactly():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, V)).astype(np.float32)
  history = rng.integers(0, V, size=(3, 9)).astype(np.int32)
  got = penalize_repeats(logits, history, np.array([9, 4, 0], np.int32),
                         np.ones((3,), np.float32), np.zeros((3,), np.int32))
  np.testing.assert_array_equal(np.asarray(got), logits)


def test_loop_gets_broken():
  history = np.array([[5, 6, 7, 5, 6, 0, 0]], np.int32)  # "5 6 7 5 6": 7 would repeat "5 6 7"
  banned = np.asarray(ngram_completions(history, np.array([5], np.int32),
                                        np.array([3], np.int32), V))
  assert banned[0].nonzero()[0].tolist() == [7]


@pytest.mark.parametrize('penalty,ngram', [(0.0, 0), (-1.0, 0), (float('inf'), 0), (1.0, 1),
                                           (1.0, MAX_NGRAM + 1), (1.0, -2)])
def test_bad_settings_are_refused(penalty, ngram):
  with pytest.raises(ValueError, match='repetition_penalty|no_repeat_ngram'):
    check_repeat_settings(penalty, ngram)
