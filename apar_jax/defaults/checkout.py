"""Where the repository's data lives when the package runs from a source checkout."""

import os
from typing import Optional


def checkout_root() -> Optional[str]:
  """The checkout holding this package (its `configs/`, `data/`, `checkpoints/` beside `apar_jax/`),
  or None for an installed (non-editable) package, which has no such folders."""
  root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  return root if os.path.isdir(os.path.join(root, 'configs')) else None
