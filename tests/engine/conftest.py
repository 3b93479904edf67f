"""Shared fixtures of the engine tests."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tiny_model import FORKY, tiny_config, tiny_params  # noqa: E402


@pytest.fixture(scope='session')
def tiny():
  config = tiny_config()
  return config, tiny_params(config)



@pytest.fixture(scope='session')
def forky_params(tiny):
  """Params of the tiny model under which greedy APAR forks often and branches end at EOS."""
  config, _ = tiny
  return tiny_params(config, **FORKY)
