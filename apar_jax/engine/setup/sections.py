"""The engine's config sections with their defaults: `config.engine` and `config.speculative`
(`apar_jax.defaults`), missing keys filled from the defaults."""

import ml_collections

from apar_jax.defaults import engine_config, speculative_config


def engine_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config.engine`, or the default engine section when the config has none."""
  if 'engine' in config:
    return config.engine
  return engine_config()


def speculative_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config.speculative` over the default section (missing keys filled)."""
  merged = speculative_config().to_dict()
  if 'speculative' in config:
    merged.update(config.speculative.to_dict())
  return ml_collections.ConfigDict(merged)
