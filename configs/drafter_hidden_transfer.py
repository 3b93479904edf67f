"""Training the default model's hidden_transfer drafter: SmolLM2-135M-Instruct (frozen) plus
self-distilled data.

    python -m apar_jax train_drafter --config=configs/drafter_hidden_transfer.py
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import drafter_defaults  # noqa: E402
import smollm2_135m  # noqa: E402


def get_config():
  config = smollm2_135m.get_config()
  config.name = 'smollm2_135m_hidden_transfer'
  config.speculative = drafter_defaults.speculative_config()
  config.drafter = drafter_defaults.drafter_train_config(
      kind='hidden_transfer', generate_answers=400, transfer_layer=20, steps=120, rows_per_step=2,
      anchors_per_row=32, learning_rate=2e-3)
  return config
