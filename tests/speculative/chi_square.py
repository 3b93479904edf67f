"""Pearson's chi-square goodness-of-fit test (scipy when installed, else the regularised gamma)."""

import math

import numpy as np


def _chi2_sf(stat: float, dof: int) -> float:
  """P(X >= stat) for X ~ chi2(dof) = Q(dof/2, stat/2): series or continued fraction (as in
  Numerical Recipes)."""
  a, x = dof / 2.0, stat / 2.0
  if x <= 0:
    return 1.0
  log_front = a * math.log(x) - x - math.lgamma(a)
  if x < a + 1:  # lower series P(a, x)
    term = total = 1.0 / a
    n = a
    for _ in range(10000):
      n += 1
      term *= x / n
      total += term
      if abs(term) < abs(total) * 1e-15:
        break
    return max(0.0, 1.0 - total * math.exp(log_front))
  b, c, d = x + 1 - a, 1e300, 1.0 / (x + 1 - a)  # continued fraction for Q(a, x)
  h = d
  for i in range(1, 10000):
    an = -i * (i - a)
    b += 2
    d = an * d + b
    d = 1e-300 if abs(d) < 1e-300 else d
    c = b + an / c
    c = 1e-300 if abs(c) < 1e-300 else c
    d = 1.0 / d
    delta = d * c
    h *= delta
    if abs(delta - 1) < 1e-15:
      break
  return math.exp(log_front) * h


def chi_square_p(observed: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
  """p-value that `observed` counts follow `probs`; cells with expected < min_expected are pooled.

  Cells of probability 0 must be empty (else p = 0)."""
  observed = np.asarray(observed, np.float64).ravel()
  probs = np.asarray(probs, np.float64).ravel()
  if np.any(observed[probs <= 0] > 0):
    return 0.0
  n = observed.sum()
  expected = probs * n
  small = (expected < min_expected) & (probs > 0)
  big = expected >= min_expected
  obs = np.concatenate([observed[big], [observed[small].sum()]])
  exp = np.concatenate([expected[big], [expected[small].sum()]])
  keep = exp > 0
  obs, exp = obs[keep], exp[keep]
  try:
    from scipy.stats import chisquare
    return float(chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)
  except ImportError:
    stat = float(np.sum((obs - exp) ** 2 / exp))
    return _chi2_sf(stat, len(obs) - 1)
