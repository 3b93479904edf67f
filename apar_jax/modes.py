"""Decoding modes, named once: `ar`, `apar`, a drafter alone (`lookup`, `medusa`, `hidden_transfer`,
`token_recycling`) or APAR with a drafter (`apar_<drafter>`). `Mode.parse` reads a name into what
the rest of the stack asks of it (does it fork, which drafter)."""

import dataclasses
from typing import Optional

DRAFTERS = ('lookup', 'medusa', 'hidden_transfer', 'token_recycling')
CHECKPOINT_DRAFTERS = ('medusa', 'hidden_transfer')  # trained: their params come from a checkpoint
SPEC_MODES = DRAFTERS + tuple(f'apar_{d}' for d in DRAFTERS)  # the modes with a drafter
MODES = ('ar', 'apar') + SPEC_MODES


@dataclasses.dataclass(frozen=True)
class Mode:
  """A parsed mode: `apar` (branches fork) and `drafter` (None = no speculation)."""
  apar: bool
  drafter: Optional[str] = None

  @classmethod
  def parse(cls, name: str) -> 'Mode':
    """'apar_medusa' -> Mode(True, 'medusa'); 'lookup' -> Mode(False, 'lookup'); an unknown name ->
    ValueError listing the modes."""
    if name not in MODES:
      raise ValueError(f'unknown engine mode {name!r}; choose one of {", ".join(MODES)}')
    if name in ('ar', 'apar'):
      return cls(name == 'apar')
    apar = name.startswith('apar_')
    return cls(apar, name[len('apar_'):] if apar else name)

  @property
  def name(self) -> str:
    if self.drafter is None:
      return 'apar' if self.apar else 'ar'
    return f'apar_{self.drafter}' if self.apar else self.drafter

  @property
  def base(self) -> str:
    """The mode without its drafter ('ar' or 'apar'): what a speculative mode must equal."""
    return 'apar' if self.apar else 'ar'


def split_mode(name: str) -> tuple[bool, Optional[str]]:
  """(apar, drafter) of a mode name (`Mode.parse`)."""
  mode = Mode.parse(name)
  return mode.apar, mode.drafter


def is_apar_mode(name: str) -> bool:
  """Whether `name` decodes in branches ('apar', 'apar_<drafter>'); False for any other name (a
  peer's, or one a benchmark reports as failed)."""
  return name == 'apar' or (name.startswith('apar_') and name[len('apar_'):] in DRAFTERS)
