"""Which model each benchmarked mode decodes: APAR modes the APAR fine-tune, the others the base model.

A base model that never writes `[Fork]` only shows what APAR's branch slots cost. With
`BenchSettings.apar_model` and a config naming an APAR adapter (`weights.apar_adapter`, the bundled
one for SmolLM2), APAR modes decode the fine-tune, and `ar_apar_model` (AR decoding of that same
fine-tune) is their baseline: their speed-up and "same tokens as AR" compare one model with itself.
AR, the speculative modes and the transformers peers keep the base model.
"""

import dataclasses
import sys
from typing import Any, Optional

import jax

from apar_jax.mode_weights import config_for_mode
from apar_jax.modes import is_apar_mode

APAR_AR = 'ar_apar_model'  # the row of AR decoding on the APAR fine-tune


@dataclasses.dataclass(frozen=True)
class BenchModels:
  base: Any  # Runtime of the config's model
  apar: Optional[Any] = None  # Runtime of the APAR fine-tune (None: APAR modes use the base model)

  def for_mode(self, mode: str) -> Any:
    """The runtime `mode` decodes with."""
    return self.apar if self.apar is not None and is_apar_mode(mode) else self.base

  def baseline(self, name: str) -> str:
    """The row a contender's speed-up and token agreement are measured against."""
    return APAR_AR if self.apar is not None and is_apar_mode(name) else 'ar'

  def describe(self) -> dict[str, Any]:
    return {'base': self.base.config.name,
            'apar_adapter': self.apar.config.weights.adapter if self.apar is not None else None}


def load_models(runtime: Any, settings: Any) -> BenchModels:
  """The base runtime plus, when an APAR mode runs and the config names an APAR adapter, the APAR
  fine-tune (params merged and placed like the base ones; same tokenizer and mesh)."""
  modes = settings.engine_modes() + (tuple(settings.serving_modes) if settings.serving else ())
  if not settings.apar_model or not any(is_apar_mode(m) for m in modes):
    return BenchModels(runtime)
  config = config_for_mode(runtime.config, 'apar', announce=False)
  if config is runtime.config:  # no APAR adapter named (or an explicit adapter already merged)
    return BenchModels(runtime)
  from apar_jax.runtime import Runtime, load_model_params
  print(f'[bench] APAR modes decode the APAR fine-tune ({config.weights.adapter}), against '
        f'{APAR_AR}', file=sys.stderr)
  shardings = jax.tree.map(lambda x: x.sharding, runtime.params)
  params = load_model_params(config, shardings=shardings)
  return BenchModels(runtime, Runtime(config, runtime.model, params, runtime.tokenizer,
                                      runtime.mesh))
