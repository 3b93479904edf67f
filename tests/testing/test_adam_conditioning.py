"""Adam's weight tolerance: optax's Adam on gradients perturbed within a rounding bound stays inside
it (also where a gradient sits at zero and the step flips), and a 1% learning-rate error does not."""

import numpy as np
import optax
import pytest

from apar_jax.testing.adam_conditioning import (AdamHyper, AdamStep, assert_weights_close,
                                                moment_ratio_bound, weight_tolerance)

STEPS, SHAPE, DELTA = 3, (64, 32), 1e-6  # DELTA: the gradients' rounding bound (absolute)


def _run(grads: list[np.ndarray], lr_scale: float = 1.0) -> tuple[np.ndarray, list[AdamStep]]:
  """Weights after optax.adam on `grads`, and the moments of every step."""
  rates = [1e-2 * lr_scale * (0.5 ** t) for t in range(STEPS)]
  tx = optax.adam(lambda count: np.asarray(rates)[count], b1=0.9, b2=0.999, eps=1e-8)
  weights = np.linspace(-1, 1, np.prod(SHAPE)).reshape(SHAPE).astype(np.float32)
  state = tx.init(weights)
  history = []
  for t, g in enumerate(grads):
    updates, state = tx.update(g, state, weights)
    weights = np.asarray(optax.apply_updates(weights, updates))
    history.append(AdamStep(rates[t], np.asarray(state[0].mu), np.asarray(state[0].nu)))
  return weights, history


def _gradients(rng) -> list[np.ndarray]:
  grads = [rng.standard_normal(SHAPE).astype(np.float32) for _ in range(STEPS)]
  for g in grads:
    g[:4] = 0.0  # four rows sit at zero: Adam's step there is all rounding
  return grads


def test_perturbed_gradients_stay_inside_and_a_learning_rate_error_does_not():
  rng = np.random.default_rng(0)
  grads = _gradients(rng)
  want, history = _run(grads)
  perturbed = [g + rng.uniform(-DELTA, DELTA, SHAPE).astype(np.float32) for g in grads]
  got, _ = _run(perturbed)
  flipped = np.abs(got[:4] - want[:4]).max()
  assert flipped > 1e-3  # the rows at zero really moved apart (a whole step)
  assert_weights_close(got, want, history, lambda g: DELTA, err_msg='perturbed')
  tolerance = weight_tolerance(history, lambda g: DELTA)
  assert np.median(tolerance[4:]) < 1e-6  # elsewhere the check stays tight
  wrong, _ = _run(grads, lr_scale=0.99)
  with pytest.raises(AssertionError, match='moved apart'):
    assert_weights_close(wrong, want, history, lambda g: DELTA, err_msg='1% learning rate')


def test_moment_ratio_bound():
  assert moment_ratio_bound(1, AdamHyper()) == pytest.approx(1.0)  # m_hat = g, sqrt(v_hat) = |g|
  # Constant gradients reach the bound's equality case only in the limit; it always covers them.
  for t in (2, 5, 50):
    assert moment_ratio_bound(t, AdamHyper()) >= 1.0
