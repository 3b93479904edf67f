"""LoRA as a side path on the targeted projections, without touching the model code.

Instead of merging W + scale * A @ B, a Flax method interceptor adds `scale * (x @ A) @ B` to each
targeted Dense/DenseGeneral output: the same function, whose backward needs no full-size dL/dW
(`train.lora.impl='intercept'`). On this CPU it measured no faster than the merge (XLA does well with
both), so the merge is the default. The token rows are set by a merge in both (a cheap row update).
"""

from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

from apar_jax.weights.lora import INPUT_AXES, LoraSpec


def _lookup(lora: dict, path: tuple[str, ...]) -> Any:
  sub = lora
  for key in path:
    if not isinstance(sub, dict) or key not in sub:
      return None
    sub = sub[key]
  return sub if isinstance(sub, dict) and 'a' in sub else None


def lora_interceptor(lora: dict, spec: LoraSpec) -> Callable:
  """An `nn.intercept_methods` interceptor adding the LoRA path of `lora` ({path: {'a', 'b'}})."""

  def interceptor(next_fun, args, kwargs, context):
    module = context.module
    out = next_fun(*args, **kwargs)
    if context.method_name != '__call__' or not isinstance(module, (nn.Dense, nn.DenseGeneral)):
      return out
    if module.path[-1] not in spec.targets:
      return out
    ab = _lookup(lora, tuple(module.path))
    if ab is None:
      return out
    x = args[0]
    n_in = INPUT_AXES.get(module.path[-1], 1)
    x_flat = x.reshape(x.shape[:x.ndim - n_in] + (-1,))  # [..., in]
    low = jnp.matmul(x_flat, ab['a'].astype(x.dtype))  # [..., r]
    delta = spec.scale * jnp.matmul(low, ab['b'].astype(x.dtype))  # [..., out]
    return out + delta.reshape(out.shape).astype(out.dtype)

  return interceptor


def apply_with_lora(model: nn.Module, params: Any, lora: dict, spec: LoraSpec, *args,
                    **kwargs) -> Any:
  """`model.apply({'params': params}, *args)` with the LoRA side paths active."""
  with nn.intercept_methods(lora_interceptor(lora, spec)):
    return model.apply({'params': params}, *args, **kwargs)


def set_token_rows(params: Any, weights: dict, spec: LoraSpec) -> Any:
  """params with the adapter's embedding rows (and untied LM-head columns) written in."""
  out = dict(params)
  ids = jnp.asarray(spec.token_ids, jnp.int32)
  table = params['embed']['embedding']
  out['embed'] = {'embedding': table.at[ids].set(weights['embed_rows'].astype(table.dtype))}
  if 'head_cols' in weights:
    head = params['lm_head']['kernel']
    out['lm_head'] = {'kernel': head.at[:, ids].set(weights['head_cols'].astype(head.dtype))}
  return out

