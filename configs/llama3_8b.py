"""LLaMA-3-8B (shape only; GQA 32/8, rope theta 5e5; LLaMA-3.1 rope scaling via --config.model.rope_scaling.kind=llama3)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import base  # noqa: E402


def get_config():
  config = base.base_config()
  config.name = 'llama3_8b'
  config.model = base.model_config(
      vocab_size=128256 + 2, d_model=4096, n_layers=32, n_heads=32, n_kv_heads=8, head_dim=128, ffn_dim=14336, rope_theta=500000.0, norm_eps=1e-5, max_position=8192,
      param_dtype='bfloat16', dtype='bfloat16')
  config.weights.source = 'hf'
  config.weights.path = ''   # a Hugging Face checkpoint directory; set on the command line
  config.tokenizer.kind = 'hf'
  config.tokenizer.path = ''   # tokenizer.model / tokenizer.json; set on the command line
  config.tokenizer.chat_template = 'chatml'
  config.mesh.fsdp = 1
  return config
