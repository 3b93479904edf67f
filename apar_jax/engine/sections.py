"""The engine's config sections with their defaults: `config.engine` (configs/engine_defaults.py) and
`config.speculative` (configs/drafter_defaults.py), missing keys filled from the defaults."""

import importlib.util
import os
from typing import Any

import ml_collections

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def _defaults(name: str) -> Any:
  path = os.path.join(REPO, 'configs', f'{name}.py')
  module_spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


def engine_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config.engine`, or the defaults of configs/engine_defaults.py when the config has none."""
  if 'engine' in config:
    return config.engine
  return _defaults('engine_defaults').engine_config()


def speculative_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config.speculative` over the defaults of configs/drafter_defaults.py (missing keys filled)."""
  merged = _defaults('drafter_defaults').speculative_config().to_dict()
  if 'speculative' in config:
    merged.update(config.speculative.to_dict())
  return ml_collections.ConfigDict(merged)
