"""Builds a model config with exactly the fields of `apar_jax.defaults.model_config` (kept in sync by
tests/weights/test_model_config.py), from what a checkpoint says about itself."""

import ml_collections


def make_model_config(*, vocab_size: int, d_model: int, n_layers: int, n_heads: int, n_kv_heads: int,
                      head_dim: int, ffn_dim: int, rope_theta: float, norm_eps: float,
                      tie_embeddings: bool, attention_bias: bool = False, max_position: int = 4096,
                      rope_kind: str = 'none', rope_factor: float = 8.0,
                      rope_low_freq_factor: float = 1.0, rope_high_freq_factor: float = 4.0,
                      rope_original_max_position: int = 8192,
                      param_dtype: str = 'float32', dtype: str = 'float32') -> ml_collections.ConfigDict:
  """A LLaMA-family model config (fp32 by default: the fast choice on CPU; use bf16 on TPU/GPU)."""
  return ml_collections.ConfigDict(dict(
      vocab_size=int(vocab_size), d_model=int(d_model), n_layers=int(n_layers), n_heads=int(n_heads),
      n_kv_heads=int(n_kv_heads), head_dim=int(head_dim), ffn_dim=int(ffn_dim),
      rope_theta=float(rope_theta),
      rope_scaling=ml_collections.ConfigDict(dict(
          kind=str(rope_kind), factor=float(rope_factor),
          low_freq_factor=float(rope_low_freq_factor),
          high_freq_factor=float(rope_high_freq_factor),
          original_max_position=int(rope_original_max_position))),
      norm_eps=float(norm_eps), tie_embeddings=bool(tie_embeddings),
      attention_bias=bool(attention_bias), max_position=int(max_position),
      param_dtype=str(param_dtype), dtype=str(dtype), remat=False))
