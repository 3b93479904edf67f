"""Training the default model's medusa drafter: SmolLM2-135M-Instruct (frozen) + self-distilled data.

    python -m apar_jax train_drafter --config=configs/drafter_medusa.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import drafter_defaults  # noqa: E402
import smollm2_135m  # noqa: E402


def get_config():
  config = smollm2_135m.get_config()
  config.name = 'smollm2_135m_medusa'
  config.speculative = drafter_defaults.speculative_config()
  config.drafter = drafter_defaults.drafter_train_config(
      kind='medusa', generate_answers=400, steps=600, batch=128, learning_rate=2e-3)
  return config
