"""The SmolLM2-135M config (real weights) of the engine's SmolLM2 tests."""

import ml_collections

from tiny_model import load_config

from apar_jax.defaults import engine_config


def smollm2_engine_config(new_tokens: int) -> ml_collections.ConfigDict:
  """configs/smollm2_135m.py with a small engine: 4 slots and requests, 48 pages of 16 tokens (8 a
  slot), `new_tokens` per answer, 8 steps a chunk, prefill chunks of 32."""
  config = load_config('smollm2_135m')
  config.engine = engine_config(
      max_slots=4, num_pages=48, page_size=16, pages_per_slot=8, max_requests=4,
      max_new_tokens=new_tokens, chunk_steps=8, prefill_chunk=32)
  return config
