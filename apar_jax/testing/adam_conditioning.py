"""How far Adam's weights may move apart when its gradients carry rounding error.

Adam steps a weight by lr * m / (sqrt(v) + eps) (bias-corrected moments). Where the gradient is
large against its rounding error the step barely notices that error; where it is near zero the
ratio is ill-conditioned and two computation orders may step a weight by opposite signs. So two runs
that agree on their gradients to rounding can disagree on a few weights by up to two whole steps,
and an elementwise tolerance on the weights has to follow each weight's own conditioning.

The bound, per step t, for a weight whose bias-corrected moments are m and s = sqrt(v), when every
gradient so far may be off by at most delta (so m and s may be off by at most delta, both being
weighted means of the gradients with weights summing to one):

    |r' - r| <= min(2 C_t, (1 + C_t) delta / (max(s - delta, 0) + eps)),   r = m / (s + eps),

with C_t = sqrt(sum_k w1_k^2 / w2_k) >= |m| / s (Cauchy-Schwarz over the moment weights w1, w2).
It is first order in the trajectory: a weight that moved apart changes the next gradients only
through the loss's curvature, which the bound leaves out.
"""

import dataclasses
import math

import numpy as np

from apar_jax.testing.rounding import order_tolerance


@dataclasses.dataclass(frozen=True)
class AdamHyper:
  """The scale_by_adam settings of the run."""
  b1: float = 0.9
  b2: float = 0.999
  eps: float = 1e-8


@dataclasses.dataclass(frozen=True)
class AdamStep:
  """One step of a weight array: its learning rate and Adam's raw moments after the step."""
  learning_rate: float
  mu: np.ndarray  # [...] first moment after the step (not bias-corrected)
  nu: np.ndarray  # [...] second moment after the step


def moment_ratio_bound(step: int, hyper: AdamHyper) -> float:
  """C_t: the largest |m_hat| / sqrt(v_hat) the moment weights allow after `step` steps."""
  ks = np.arange(1, step + 1)
  w1 = (1 - hyper.b1) * hyper.b1 ** (step - ks) / (1 - hyper.b1 ** step)
  w2 = (1 - hyper.b2) * hyper.b2 ** (step - ks) / (1 - hyper.b2 ** step)
  return math.sqrt(float(np.sum(w1 ** 2 / w2)))


def gradients_of(steps: list[AdamStep], hyper: AdamHyper) -> list[np.ndarray]:
  """Each step's gradient, from the first moments: g_t = (mu_t - b1 mu_{t-1}) / (1 - b1)."""
  previous = np.zeros_like(np.asarray(steps[0].mu, np.float64))
  grads = []
  for s in steps:
    mu = np.asarray(s.mu, np.float64)
    grads.append((mu - hyper.b1 * previous) / (1 - hyper.b1))
    previous = mu
  return grads


def weight_tolerance(steps: list[AdamStep], grad_error,
                     hyper: AdamHyper = AdamHyper()) -> np.ndarray:
  """[...] how far each weight may drift after these steps, from the reference run's moments.

  `grad_error(g)` gives the largest rounding difference between the two runs' values of the
  gradient array g: a scalar (for instance `rounding.order_tolerance(g, terms)`) or an array that
  broadcasts against g (slices built from disjoint terms, such as an embedding's rows, each at its
  own scale).
  """
  tolerance = np.zeros_like(np.asarray(steps[0].nu, np.float64))
  delta = np.zeros_like(tolerance)
  for t, (s, g) in enumerate(zip(steps, gradients_of(steps, hyper)), start=1):
    delta = np.maximum(delta, np.asarray(grad_error(g), np.float64))
    c = moment_ratio_bound(t, hyper)
    root_v = np.sqrt(np.asarray(s.nu, np.float64) / (1 - hyper.b2 ** t))
    sensitive = (1 + c) * delta / (np.maximum(root_v - delta, 0.0) + hyper.eps)
    tolerance += abs(s.learning_rate) * np.minimum(2 * c, sensitive)
  return tolerance


def assert_weights_close(got: np.ndarray, want: np.ndarray, steps: list[AdamStep], grad_error,
                         hyper: AdamHyper = AdamHyper(), err_msg: str = '') -> None:
  """Asserts two Adam runs' weights agree as their gradients' rounding allows (`weight_tolerance`),
  plus the rounding of adding one update per step to weights of want's scale."""
  got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
  tolerance = (weight_tolerance(steps, grad_error, hyper)
               + order_tolerance(want, len(steps) + 1, np.float32))
  outside = ~(np.abs(got - want) <= tolerance)
  if np.any(outside):
    diff = np.where(outside, np.nan_to_num(np.abs(got - want), nan=np.inf), -1)
    worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
    raise AssertionError(
        f'{err_msg}: {int(np.sum(outside))} of {got.size} weights moved apart by more than Adam '
        f'with rounded gradients allows; worst at {tuple(int(i) for i in worst)}: {got[worst]!r} '
        f'vs {want[worst]!r} (|diff| {abs(got[worst] - want[worst]):.3g}, allowed '
        f'{tolerance[worst]:.3g})')
