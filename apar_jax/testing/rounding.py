"""How far two computation orders of the same floating-point computation may drift apart.

A value computed through a chain of `terms` rounded operations (the accumulation depth: the lengths
of all the sums along its longest path, forward and backward) carries a relative error of at most
gamma_n = n u / (1 - n u) (u the unit roundoff, Higham, *Accuracy and Stability of Numerical
Algorithms*, section 3.1) relative to the sum of the magnitudes it was built from. That worst case is
pessimistic for large n; modelling the rounding errors as independent and mean-zero (Higham & Mary,
"A new approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 2019, theorem 2.4)
gives lambda * sqrt(n) * u, which holds with probability at least 1 - 2 n exp(-lambda^2 / 2) per
value. `relative_bound` takes the smaller of the two, with lambda chosen so that no value of the
comparison exceeds it with more than `failure_probability`.

Two orders (a mesh against one device, two processes against one, paged against dense, a kernel
against its reference) each carry such an error, so they may differ by twice the bound. The scale is
the compared array's largest magnitude: an element near zero was built from terms the size of its
neighbours (a gradient entry that cancels, a logit near zero), so the comparison is normwise, not
elementwise-relative. These bounds are first order: they do not add the amplification of a badly
conditioned step (a division by a small number, Adam's g / |g|; see `adam_conditioning`).
"""

import math

import ml_dtypes
import numpy as np

DEFAULT_FAILURE_PROBABILITY = 1e-9


def unit_roundoff(dtype) -> float:
  """u = 2^-p for a p-bit significand: 2^-24 for float32, 2^-8 for bfloat16."""
  dtype = ml_dtypes.bfloat16 if str(dtype) == 'bfloat16' else dtype
  return float(ml_dtypes.finfo(dtype).eps) / 2


def relative_bound(terms: int, dtype, *, values: int = 1,
                   failure_probability: float = DEFAULT_FAILURE_PROBABILITY) -> float:
  """Relative error of one order of a `terms`-deep computation, for `values` values at once."""
  if terms < 1 or values < 1:
    raise ValueError(f'need terms >= 1 and values >= 1, got {terms} and {values}')
  if not 0 < failure_probability < 1:
    raise ValueError(f'need 0 < failure_probability < 1, got {failure_probability}')
  u = unit_roundoff(dtype)
  worst = math.inf if terms * u >= 1 else terms * u / (1 - terms * u)
  # 2 n m exp(-lambda^2 / 2) <= p over the m values, each with its own n rounding errors.
  lam = math.sqrt(2 * math.log(2 * terms * values / failure_probability))
  probable = math.expm1(lam * math.sqrt(terms) * u + terms * u * u / (1 - u))
  return min(worst, probable)


def order_tolerance(want, terms: int, dtype=None, *, scale=None,
                    failure_probability: float = DEFAULT_FAILURE_PROBABILITY):
  """Absolute tolerance between two orders of `want`: 2 * relative_bound * scale.

  `dtype` defaults to want's dtype (the precision the computation ran in); `scale` to max |want|
  (a float, or an array broadcasting against want where slices of it are built from disjoint
  terms, see `slice_scale`).
  """
  want = np.asarray(want)
  dtype = want.dtype if dtype is None else np.dtype(dtype)
  return 2 * relative_bound(terms, dtype, values=max(want.size, 1),
                            failure_probability=failure_probability) * _scale(want, scale)


def slice_scale(want, axis) -> np.ndarray:
  """max |want| over `axis`, kept for broadcasting: the scale of each slice built from its own terms
  (an embedding gradient's rows sum only the positions of their token)."""
  return np.max(np.abs(np.asarray(want, np.float64)), axis=axis, keepdims=True)


def assert_close_across_orders(got, want, *, terms: int, dtype=None, scale=None,
                               err_msg: str = '') -> None:
  """Asserts got and want agree as two computation orders of a `terms`-deep computation may."""
  want = np.asarray(want)
  dtype = want.dtype if dtype is None else np.dtype(dtype)
  assert_within(got, want, order_tolerance(want, terms, dtype, scale=scale),
                why=f'two orders of a {terms}-term {dtype.name} computation', err_msg=err_msg)


def assert_within(got, want, atol, *, why: str, err_msg: str = '') -> None:
  """Asserts |got - want| <= atol (a float or an array broadcasting against want); NaN fails."""
  got, want = np.asarray(got), np.asarray(want)
  if got.shape != want.shape:
    raise AssertionError(f'{err_msg}: shapes differ: {got.shape} vs {want.shape}')
  atol = np.broadcast_to(np.asarray(atol, np.float64), want.shape)
  diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
  outside = ~(diff <= atol)  # NaN is outside
  if np.any(outside):
    worst = np.unravel_index(int(np.argmax(np.where(outside, np.nan_to_num(diff, nan=np.inf), -1))),
                             diff.shape)
    raise AssertionError(
        f'{err_msg}: {int(np.sum(outside))} of {diff.size} elements differ by more than {why} '
        f'may; worst at {tuple(int(i) for i in worst)}: {got[worst]!r} vs {want[worst]!r} '
        f'(|diff| {diff[worst]:.3g}, allowed {atol[worst]:.3g})')


def _scale(want: np.ndarray, scale):
  if scale is not None:
    return np.asarray(scale, np.float64) if np.ndim(scale) else float(scale)
  return float(np.max(np.abs(want.astype(np.float64)))) if want.size else 0.0
