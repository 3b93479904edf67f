"""Next-token loss of packed rows: summed NLL over the loss targets, and their count.

Returning the sum (not the mean) lets gradient accumulation and data parallelism add micro-batches
exactly; the step divides by the total target count once.
"""

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from apar_jax.model import Transformer
from apar_jax.training.packed_spec import PackedTreeSpec
from apar_jax.training.unlikelihood import root_unlikelihood_sum

Batch = dict[str, jax.Array]


def token_nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """logits [B, T, V] fp32, targets [B, T] int32 -> NLL [B, T] fp32."""
  logz = jax.nn.logsumexp(logits, axis=-1)  # [B, T]
  picked = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]  # [B, T]
  return logz - picked


def packed_loss_sums(model: Transformer, params: Any, batch: Batch, *, max_depth: int = 2,
                     attention_impl: str = 'auto', root_unlikelihood_weight: float = 0.0,
                     unlikelihood_vocab: Optional[jax.Array] = None,
                     apply: Optional[Callable[..., Any]] = None) -> tuple[jax.Array, jax.Array]:
  """batch: packed-row arrays (see apar_data.packing.PackedRows) [B, T] / [B, NB].

  `apply(tokens, positions, spec) -> ModelOutput` replaces `model.apply` with `params` when given.
  Returns (sum of NLL over targets [], number of targets []); with `root_unlikelihood_weight` > 0
  the first sum adds that many times the tree roots' unlikelihood (see unlikelihood.py), its
  candidates limited to `unlikelihood_vocab` [V] bool when given.
  """
  spec = PackedTreeSpec(batch['branch_ids'], batch['branch_parent'], batch['fork_index'],
                        max_depth=max_depth, impl=attention_impl)
  if apply is None:
    apply = lambda *args: model.apply({'params': params}, *args)  # noqa: E731
  logits = apply(batch['tokens'], batch['positions'], spec).logits
  nll = token_nll(logits, batch['targets'])
  weights = batch['weights'].astype(jnp.float32)
  total = jnp.sum(nll * weights)
  if root_unlikelihood_weight:
    total = total + root_unlikelihood_weight * root_unlikelihood_sum(logits, batch,
                                                                        unlikelihood_vocab)
  return total, jnp.sum(weights)


def loss_sums_fn(apply_model: Callable[..., Any], *, max_depth: int, attention_impl: str,
                 root_unlikelihood_weight: float = 0.0,
                 unlikelihood_vocab: Optional[jax.Array] = None
                 ) -> Callable[[Any, Any, Batch], tuple[jax.Array, jax.Array]]:
  """(trainable, frozen, batch) -> (NLL sum, target count).

  `apply_model(trainable, frozen, tokens, positions, spec) -> ModelOutput` (see trainable.py).
  """

  def fn(trainable, frozen, batch):
    apply = lambda *args: apply_model(trainable, frozen, *args)  # noqa: E731
    return packed_loss_sums(None, None, batch, max_depth=max_depth, attention_impl=attention_impl,
                            root_unlikelihood_weight=root_unlikelihood_weight,
                            unlikelihood_vocab=unlikelihood_vocab, apply=apply)

  return fn
