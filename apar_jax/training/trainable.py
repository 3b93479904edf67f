"""What a run trains: a LoRA adapter over frozen params, or all params (full fine-tuning).

`split_trainable` returns (trainable, frozen, apply_model, spec): the loss only calls `apply_model`,
so the step code is the same for both methods.
"""

from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import ml_collections

from apar_jax.weights.lora import Adapter, LoraSpec, init_adapter, merge_weights
from apar_jax.training.lora_intercept import apply_with_lora, set_token_rows

METHODS = ('lora', 'full')
ApplyModel = Callable[..., Any]


def lora_spec(train_cfg: ml_collections.ConfigDict, token_ids: tuple[int, ...]) -> LoraSpec:
  lora = train_cfg.lora
  return LoraSpec(rank=int(lora.rank), alpha=float(lora.alpha), targets=tuple(lora.targets),
                  token_ids=tuple(int(i) for i in token_ids))


def split_trainable(model: nn.Module, params: Any, train_cfg: ml_collections.ConfigDict,
                    token_ids: tuple[int, ...], key: jax.Array
                    ) -> tuple[Any, Optional[Any], ApplyModel, Optional[LoraSpec]]:
  """(trainable, frozen, apply_model, lora spec or None) for `train_cfg.method`.

  `apply_model(trainable, frozen, tokens, positions, spec) -> ModelOutput`. LoRA is merged into the
  kernels (`lora.impl='merge'`, what inference does) or runs as side paths (`'intercept'`); both
  compute the same function and measured about equally fast here (merge ~7% faster, in the noise).
  """
  method = train_cfg.method
  if method == 'full':
    return params, None, lambda trainable, frozen, *args: model.apply({'params': trainable},
                                                                      *args), None
  if method != 'lora':
    raise ValueError(f'train.method must be one of {METHODS}, got {method!r}')
  spec = lora_spec(train_cfg, token_ids)
  adapter = init_adapter(params, spec, key)
  impl = train_cfg.lora.get('impl', 'merge')
  if impl == 'merge':
    def apply_model(weights, frozen, *args):
      return model.apply({'params': merge_weights(frozen, weights, spec)}, *args)
  elif impl == 'intercept':
    def apply_model(weights, frozen, *args):
      return apply_with_lora(model, set_token_rows(frozen, weights, spec), weights['lora'], spec,
                             *args)
  else:
    raise ValueError(f"train.lora.impl must be 'intercept' or 'merge', got {impl!r}")
  return adapter.weights, params, apply_model, spec


def adapter_of(trainable: Any, spec: LoraSpec) -> Adapter:
  return Adapter(spec, trainable)
