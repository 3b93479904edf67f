"""The engine tests' tiny random model (`apar_jax.testing.tiny_engine`, shared with the device check)
and configs/ loaded by name."""

import importlib.util
import os

import ml_collections

from apar_jax.testing.tiny_engine import (CHILD, EOS, FORK, FORKY, IDS, VOCAB,  # noqa: F401
                                          FakeTokenizer, tiny_config, tiny_params)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_config(name: str) -> ml_collections.ConfigDict:
  """configs/<name>.py's get_config() (loaded by path, as `--config=` does)."""
  spec = importlib.util.spec_from_file_location(f'_engine_test_config_{name}',
                                                os.path.join(REPO, 'configs', f'{name}.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()
