"""Training the default model's hidden_transfer drafter: SmolLM2-135M-Instruct (frozen) plus
self-distilled data.

    python -m apar_jax train_drafter --config=configs/drafter_hidden_transfer.py
"""

import os

from apar_jax.defaults import drafter_train_config, presets, speculative_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_config():
  config = presets.smollm2_135m(REPO)
  config.name = 'smollm2_135m_hidden_transfer'
  config.speculative = speculative_config()
  config.drafter = drafter_train_config(
      kind='hidden_transfer', generate_answers=400, transfer_layer=20, steps=120, rows_per_step=2,
      anchors_per_row=32, learning_rate=2e-3)
  return config
