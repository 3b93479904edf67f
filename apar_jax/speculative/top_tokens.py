"""The k highest-scoring token ids of each row of logits, as drafters need them.

`jax.lax.top_k` would do, but XLA's SPMD partitioner does not split its operation along a batch
dimension: on an engine with data shards (a leading shard axis partitioned over the mesh's `data`
axis) it gathered every shard's drafter logits onto every device each step. `k` masked arg-maxes
partition like any reduction and give the same ids in the same order for finite logits (ties go to
the lower id, as in `lax.top_k`); k is small (the draft tree's width).
"""

import jax
import jax.numpy as jnp


def top_tokens(logits: jax.Array, k: int) -> jax.Array:
  """logits [..., V] (finite) -> ids [..., k] int32 of the k largest, highest first."""
  ids = []
  for _ in range(k):
    best = jnp.argmax(logits, axis=-1)  # [...]
    ids.append(best.astype(jnp.int32))
    taken = jnp.arange(logits.shape[-1]) == best[..., None]  # [..., V]
    logits = jnp.where(taken, -jnp.inf, logits)
  return jnp.stack(ids, axis=-1)
