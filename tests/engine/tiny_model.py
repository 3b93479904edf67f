"""The engine tests' tiny random model (`apar_jax.testing.tiny_engine`, shared with the device check)
and configs/ loaded by name."""

import importlib
import os
import sys

import ml_collections

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if os.path.join(REPO, 'configs') not in sys.path:
  sys.path.insert(0, os.path.join(REPO, 'configs'))

import engine_defaults  # noqa: E402,F401

from apar_jax.testing.tiny_engine import (CHILD, EOS, FORK, FORKY, IDS, VOCAB,  # noqa: E402,F401
                                          FakeTokenizer, tiny_config, tiny_params)


def load_config(name: str) -> ml_collections.ConfigDict:
  """configs/<name>.py's get_config()."""
  return importlib.import_module(name).get_config()
