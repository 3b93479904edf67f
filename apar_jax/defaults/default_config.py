"""The config `python -m apar_jax` uses without `--config`: SmolLM2-135M (`presets.smollm2_135m`).

A module with `get_config()`, so that `--config` can default to this file (ml_collections loads
config files by path) and `--config.x.y=` overrides work without a `configs/` folder (an installed
package).
"""

import ml_collections

from apar_jax.defaults.presets import smollm2_135m


def get_config() -> ml_collections.ConfigDict:
  return smollm2_135m()
