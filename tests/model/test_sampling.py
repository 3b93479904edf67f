"""Top-k / top-p filtering against a slow reference, and sampling determinism."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_jax.sampling import ban_tokens, filter_top_k_top_p, sample_logits


def _reference_keep(logits: np.ndarray, top_k: int, top_p: float) -> set[int]:
  """Indices kept: the top-k (by value), intersected with the smallest nucleus reaching top_p."""
  order = sorted(range(len(logits)), key=lambda i: -logits[i])
  keep_k = set(order[:top_k]) if top_k > 0 else set(order)
  probs = np.exp(logits - logits.max())
  probs /= probs.sum()
  keep_p, mass = set(), 0.0
  for i in order:
    keep_p.add(i)
    mass += probs[i]
    if mass >= top_p - 1e-7:
      break
  return keep_k & keep_p


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-50, 50), min_size=2, max_size=12, unique=True), st.integers(0, 12),
       st.floats(0.05, 1.0))
def test_filter_matches_reference(values, top_k, top_p):
  logits = np.asarray(values, np.float32) / 10  # distinct values: ties are order-dependent
  got = np.asarray(filter_top_k_top_p(jnp.asarray(logits)[None], jnp.asarray([top_k]),
                                      jnp.asarray([top_p], jnp.float32)))[0]
  kept = {i for i in range(len(values)) if np.isfinite(got[i])}
  assert kept == _reference_keep(logits, top_k, top_p)


def test_greedy_rows_and_banned_tokens():
  logits = jnp.asarray([[0.0, 5.0, 1.0], [2.0, 1.0, 0.0]])
  logits = ban_tokens(logits, (1,))
  keys = jax.random.split(jax.random.key(0), 2)
  toks = sample_logits(logits, keys, jnp.zeros(2), jnp.zeros(2, jnp.int32), jnp.ones(2))
  assert toks.tolist() == [2, 0]


def test_same_seed_same_draws_and_frequencies():
  logits = jnp.log(jnp.asarray([[0.6, 0.3, 0.1]] * 4000))
  keys = jax.random.split(jax.random.key(7), 4000)
  t = jnp.ones(4000)
  a = sample_logits(logits, keys, t, jnp.zeros(4000, jnp.int32), jnp.ones(4000))
  b = sample_logits(logits, keys, t, jnp.zeros(4000, jnp.int32), jnp.ones(4000))
  assert (a == b).all()
  freq = np.bincount(np.asarray(a), minlength=3) / 4000
  np.testing.assert_allclose(freq, [0.6, 0.3, 0.1], atol=0.03)
