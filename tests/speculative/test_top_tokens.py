"""`top_tokens` (masked arg-maxes) gives `jax.lax.top_k`'s ids, in order, ties included."""

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.speculative.top_tokens import top_tokens


def test_same_ids_as_lax_top_k_with_ties():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 5, 97)).astype(np.float32)
  logits[0, 0, [3, 7, 50]] = 9.0  # a three-way tie at the top: lower ids first
  logits[1, 2] = np.round(logits[1, 2])  # many ties everywhere
  for k in (1, 2, 6):
    _, expected = jax.lax.top_k(jnp.asarray(logits), k)
    got = top_tokens(jnp.asarray(logits), k)
    assert got.dtype == jnp.int32 and got.shape == (3, 5, k)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
  assert top_tokens(jnp.asarray(logits), 3)[0, 0].tolist() == [3, 7, 50]
