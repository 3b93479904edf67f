"""LLaMA-2-7B (shape only). Weights and tokenizer: --config.weights.path=DIR
--config.tokenizer.path=FILE."""

from apar_jax.defaults import presets


def get_config():
  return presets.llama2_7b()
