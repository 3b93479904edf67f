"""`StepConfig`: everything static one decode step needs (hashable: part of the compile key)."""

import dataclasses
from typing import Optional

from apar_jax.engine.device.spec_config import SpecConfig
from apar_jax.engine.device.state import Capacities
from apar_jax.engine.device.token_choice import ControlIds
from apar_jax.model import Transformer


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """The model, capacities, control ids and mode of a step; `spec` for a speculative mode (its
  drafter and the row bucket's tree)."""
  model: Transformer
  caps: Capacities
  ids: ControlIds
  apar: bool
  attention_impl: str = 'auto'
  spec: Optional[SpecConfig] = None

  @property
  def drafts(self) -> bool:
    """Whether the step verifies drafted tokens (False for AR, APAR and the root-only tree)."""
    return self.spec is not None and self.spec.tree.num_nodes > 1
