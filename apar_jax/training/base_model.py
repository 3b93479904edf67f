"""Distillation and training start from the base model, never from the config's own adapter."""

import ml_collections


def without_adapter(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` whose `weights.adapter` is empty (the config itself is unchanged)."""
  base = ml_collections.ConfigDict(config.to_dict())
  if 'adapter' in base.weights:
    base.weights.adapter = ''
  return base
