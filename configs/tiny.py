"""A tiny random-init model with the SmolLM2 tokenizer, for tests and quick experiments."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import base  # noqa: E402


def get_config():
  config = base.base_config()
  config.name = 'tiny'
  config.model = base.model_config(
      vocab_size=49152 + 2, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16,
      ffn_dim=128, rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=False, max_position=2048)
  config.weights.source = 'random'
  config.generate.max_cache_len = 512
  config.generate.max_new_tokens = 32
  return config
