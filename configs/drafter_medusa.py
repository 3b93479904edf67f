"""Training the default model's medusa drafter: SmolLM2-135M-Instruct (frozen) plus self-distilled
data.

    python -m apar_jax train_drafter --config=configs/drafter_medusa.py
"""

import os

from apar_jax.defaults import drafter_train_config, presets, speculative_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_config():
  config = presets.smollm2_135m(REPO)
  config.name = 'smollm2_135m_medusa'
  config.speculative = speculative_config()
  config.drafter = drafter_train_config(
      kind='medusa', generate_answers=400, steps=600, batch=128, learning_rate=2e-3)
  return config
