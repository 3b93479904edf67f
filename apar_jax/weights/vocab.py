"""Growing the vocabulary for the APAR control tokens [Fork] and [Child] (appended at the end).

New embedding rows (and untied LM-head columns) start at the mean of the existing ones, so the new
tokens begin as an "average token" rather than noise; fine-tuning then teaches them.
"""

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from apar_jax.weights.errors import MissingTensorError, ShapeMismatchError

Params = dict[str, Any]


def _append_mean(table: Any, extra: int, axis: int) -> Any:
  """Appends `extra` copies of the mean along `axis` (computed in fp32, cast back)."""
  mean = jnp.mean(table.astype(jnp.float32), axis=axis, keepdims=True)  # [1, d] or [d, 1]
  reps = [1, 1]
  reps[axis] = extra
  return jnp.concatenate([table, jnp.tile(mean, reps).astype(table.dtype)], axis=axis)


def vocab_size_of(params: Params) -> int:
  return int(params['embed']['embedding'].shape[0])


def grow_vocab(params: Params, new_vocab_size: int, tie_embeddings: bool) -> Params:
  """Returns params with `new_vocab_size` rows of embed [V, d] (and columns of lm_head [d, V])."""
  old = vocab_size_of(params)
  if new_vocab_size < old:
    raise ShapeMismatchError(
        f'cannot shrink the vocabulary from {old} to {new_vocab_size}: set the model vocab_size to '
        f'at least {old}')
  if not tie_embeddings and 'lm_head' not in params:
    raise MissingTensorError('untied model params have no lm_head: pass tie_embeddings=True if the '
                             'LM head is the embedding table')
  if new_vocab_size == old:
    return params
  extra = new_vocab_size - old
  grown = dict(params)
  grown['embed'] = {'embedding': _append_mean(params['embed']['embedding'], extra, axis=0)}
  if not tie_embeddings:
    grown['lm_head'] = {'kernel': _append_mean(params['lm_head']['kernel'], extra, axis=1)}
  return grown


def fit_vocab(params: Params, model_cfg: ml_collections.ConfigDict, shardings: Any = None) -> Params:
  """Grows the checkpoint vocabulary to the model config's (which may not be smaller).

  With `shardings` (a pytree of the model's shardings), grown leaves are placed with theirs.
  """
  old = vocab_size_of(params)
  params = grow_vocab(params, int(model_cfg.vocab_size), bool(model_cfg.tie_embeddings))
  if shardings is not None and vocab_size_of(params) != old:
    params['embed'] = {'embedding': jax.device_put(params['embed']['embedding'],
                                                   shardings['embed']['embedding'])}
    if 'lm_head' in params:
      params['lm_head'] = {'kernel': jax.device_put(params['lm_head']['kernel'],
                                                    shardings['lm_head']['kernel'])}
  return params
