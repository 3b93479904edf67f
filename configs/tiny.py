"""A tiny random-init model with the SmolLM2 tokenizer, for tests and quick experiments."""

import os

from apar_jax.defaults import presets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_config():
  return presets.tiny(REPO)
