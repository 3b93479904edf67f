"""Which weights a decoding mode uses: APAR modes take the config's APAR fine-tune by default.

A base model rarely writes `[Fork]`, so `generate --mode=apar` on the default SmolLM2 config merges the
bundled APAR adapter (`config.weights.apar_adapter`) unless the config already names an adapter;
AR and the speculative modes keep the base weights.
"""

import os
import sys

import ml_collections

from apar_jax.modes import is_apar_mode


def config_for_mode(config: ml_collections.ConfigDict, mode: str,
                    announce: bool = True) -> ml_collections.ConfigDict:
  """`config`, or a copy whose `weights.adapter` is the APAR adapter when `mode` is an APAR mode."""
  apar_adapter = config.weights.get('apar_adapter', '')
  if not is_apar_mode(mode) or config.weights.get('adapter', '') or not apar_adapter:
    return config
  if not os.path.isdir(apar_adapter):
    raise FileNotFoundError(
        f'--mode={mode} uses the APAR adapter {apar_adapter}, which does not exist: train it with '
        '`python -m apar_jax train --config=configs/apar_smollm2_135m.py`, or pass '
        "--config.weights.apar_adapter='' to decode with the base model (it rarely forks)")
  config = ml_collections.ConfigDict(config.to_dict())
  config.weights.adapter = apar_adapter
  if announce:
    print(f'[generate] --mode={mode}: merging the APAR adapter {apar_adapter}', file=sys.stderr)
  return config
