"""The engine loads nothing itself: params and a tokenizer (or control ids) come from the caller, and
a missing one is refused with the way to load it."""

import pytest

from apar_jax.engine import Engine
from tiny_model import IDS, tiny_config, tiny_params


def test_missing_params_or_tokenizer_say_how_to_load_them():
  config = tiny_config()
  with pytest.raises(ValueError, match='Engine needs params.*load_runtime'):
    Engine(config, 'ar', params=None, control_ids=IDS)
  with pytest.raises(ValueError, match='Engine needs a tokenizer.*from_runtime'):
    Engine(config, 'ar', params=tiny_params(config))
  with pytest.raises(TypeError):
    Engine(config, 'ar')  # params is a required keyword
