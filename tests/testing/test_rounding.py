"""The rounding bounds hold for real float32 / bfloat16 sums in different orders, and are not vacuous."""

import math

import ml_dtypes
import numpy as np
import pytest

from apar_jax.testing.rounding import (assert_close_across_orders, order_tolerance, relative_bound,
                                       unit_roundoff)


def test_unit_roundoff_per_dtype():
  assert unit_roundoff(np.float32) == 2.0 ** -24
  assert unit_roundoff('bfloat16') == unit_roundoff(ml_dtypes.bfloat16) == 2.0 ** -8
  assert unit_roundoff(np.float64) == 2.0 ** -53


def test_bound_is_the_smaller_of_worst_case_and_probable():
  u = 2.0 ** -24
  assert relative_bound(4, np.float32) == pytest.approx(4 * u / (1 - 4 * u))  # few terms: worst case
  big = relative_bound(100_000, np.float32)
  assert big < 100_000 * u / 10  # many terms: sqrt(n) growth
  assert big == pytest.approx(math.sqrt(2 * math.log(2e5 / 1e-9)) * math.sqrt(1e5) * u, rel=1e-3)
  assert relative_bound(1000, np.float32, values=10**6) > relative_bound(1000, np.float32)
  with pytest.raises(ValueError, match='terms >= 1'):
    relative_bound(0, np.float32)


def _sequential_sums(rows: np.ndarray) -> np.ndarray:
  """Left-to-right float32 sums, one row at a time (the worst-accumulating order)."""
  acc = np.zeros(rows.shape[0], rows.dtype)
  for j in range(rows.shape[1]):
    acc = (acc + rows[:, j]).astype(rows.dtype)
  return acc


@pytest.mark.parametrize('dtype,n', [(np.float32, 2048), (ml_dtypes.bfloat16, 32)])
@pytest.mark.parametrize('signs', ['mixed', 'positive'])
def test_two_summation_orders_stay_inside_and_an_error_does_not(dtype, n, signs):
  rng = np.random.default_rng(0)
  rows = rng.standard_normal((256, n))
  rows = (np.abs(rows) if signs == 'positive' else rows).astype(dtype)
  forward = _sequential_sums(rows)
  backward = _sequential_sums(rows[:, ::-1].copy())
  exact = np.sum(rows.astype(np.float64), axis=1)
  # The bound is relative to the sum of the terms' magnitudes.
  scale = float(np.max(np.sum(np.abs(rows.astype(np.float64)), axis=1)))
  tolerance = order_tolerance(exact, n, dtype, scale=scale)
  assert_close_across_orders(forward, backward, terms=n, scale=scale, err_msg='two orders')
  assert np.all(np.abs(forward - exact) <= tolerance / 2)
  if signs == 'positive':  # no cancellation: the drift seen is a real fraction of the bound
    seen = float(np.max(np.abs(forward.astype(np.float64) - backward.astype(np.float64))))
    assert seen > tolerance / 30
  # One element wrong by twice the bound fails, and is named.
  broken = forward.astype(np.float64)
  broken[7] = backward[7] + 2 * tolerance
  with pytest.raises(AssertionError, match=r'1 of 256 elements .* worst at \(7,\)'):
    assert_close_across_orders(broken, backward.astype(np.float64), terms=n, dtype=dtype,
                               scale=scale, err_msg='x')


def test_nan_and_shape_mismatch_fail():
  want = np.ones(3, np.float32)
  with pytest.raises(AssertionError, match='1 of 3'):
    assert_close_across_orders(np.array([1, np.nan, 1], np.float32), want, terms=10)
  with pytest.raises(AssertionError, match='shapes differ'):
    assert_close_across_orders(np.ones(4, np.float32), want, terms=10)
