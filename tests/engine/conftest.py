"""Shared fixtures of the engine tests."""

import pytest

from tiny_model import FORKY, tiny_config, tiny_params


@pytest.fixture(scope='session')
def tiny():
  config = tiny_config()
  return config, tiny_params(config)


@pytest.fixture(scope='session')
def forky_params(tiny):
  """Params of the tiny model under which greedy APAR forks often and branches end at EOS."""
  config, _ = tiny
  return tiny_params(config, **FORKY)
