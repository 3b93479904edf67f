"""One optimizer step: gradients summed over micro-batches (accumulation), then clip + AdamW.

The state is a dict {'step' [], 'trainable', 'opt_state'}; the frozen params ride along unchanged.
Batches have a leading accumulation axis: every leaf is [A, M, ...] (A micro-batches of M rows). The
loss is the mean NLL over all targets of the step, so accumulating A micro-batches equals one batch
of A * M rows exactly.
"""

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

State = dict[str, Any]
Batch = dict[str, jax.Array]
LossSums = Callable[[Any, Any, Batch], tuple[jax.Array, jax.Array]]


def init_state(trainable: Any, tx: optax.GradientTransformation) -> State:
  return {'step': jnp.zeros((), jnp.int32), 'trainable': trainable, 'opt_state': tx.init(trainable)}


def make_train_step(loss_sums: LossSums, tx: optax.GradientTransformation,
                    schedule: optax.Schedule) -> Callable[[State, Any, Batch],
                                                          tuple[State, dict[str, jax.Array]]]:
  """(state, frozen, batch [A, M, ...]) -> (new state, metrics); jit it with the caller's shardings."""

  def grad_of_sum(trainable, frozen, micro):
    (nll, count), grads = jax.value_and_grad(
        lambda t: loss_sums(t, frozen, micro), has_aux=True)(trainable)
    return nll, count, grads

  def step(state: State, frozen: Any, batch: Batch):
    trainable = state['trainable']

    def body(carry, micro):
      nll_acc, count_acc, grads_acc = carry
      nll, count, grads = grad_of_sum(trainable, frozen, micro)
      return (nll_acc + nll, count_acc + count, jax.tree.map(jnp.add, grads_acc, grads)), None

    zeros = jax.tree.map(jnp.zeros_like, trainable)
    init = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.float32), zeros)
    (nll, count, grads), _ = jax.lax.scan(body, init, batch)
    denom = jnp.maximum(count, 1.0)
    grads = jax.tree.map(lambda g: g / denom, grads)
    updates, opt_state = tx.update(grads, state['opt_state'], trainable)
    new_state = {'step': state['step'] + 1, 'trainable': optax.apply_updates(trainable, updates),
                 'opt_state': opt_state}
    metrics = {'loss': nll / denom, 'grad_norm': optax.tree.norm(grads),
               'learning_rate': schedule(state['step']), 'targets': count,
               'tokens': jnp.sum((batch['branch_ids'] >= 0).astype(jnp.float32))}
    return new_state, metrics

  return step

