"""The `config.model` section: a LLaMA-family shape (`model_config`); presets set the numbers."""

import ml_collections


def model_config(**overrides) -> ml_collections.ConfigDict:
  """A LLaMA-family model description; `overrides` set the shape."""
  model = ml_collections.ConfigDict(dict(
      vocab_size=32000,          # including the APAR control tokens when the tokenizer adds them
      d_model=4096,
      n_layers=32,
      n_heads=32,
      n_kv_heads=32,
      head_dim=128,
      ffn_dim=11008,
      rope_theta=10000.0,
      rope_scaling=ml_collections.ConfigDict(dict(
          kind='none',                      # 'none' | 'llama3'
          factor=8.0,
          low_freq_factor=1.0,
          high_freq_factor=4.0,
          original_max_position=8192)),
      norm_eps=1e-5,
      tie_embeddings=False,
      attention_bias=False,
      max_position=4096,
      param_dtype='float32',
      dtype='float32',                      # compute dtype; bf16 on TPU/GPU
      remat=False,                          # rematerialise each layer (training)
  ))
  model.update(overrides)
  return model
