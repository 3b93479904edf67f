"""LLaMA-3-8B (shape only; GQA 32/8, rope theta 5e5; LLaMA-3.1 rope scaling via
--config.model.rope_scaling.kind=llama3). Weights and tokenizer: --config.weights.path=DIR
--config.tokenizer.path=FILE."""

from apar_jax.defaults import presets


def get_config():
  return presets.llama3_8b()
