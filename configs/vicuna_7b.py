"""Vicuna-7B v1.5 (LLaMA-2-7B shape, Vicuna v1.1 chat template), the APAR authors' base model.
Weights and tokenizer: --config.weights.path=DIR --config.tokenizer.path=FILE."""

from apar_jax.defaults import presets


def get_config():
  return presets.vicuna_7b()
