"""LLaMA-2-13B (shape only)."""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import base  # noqa: E402


def get_config():
  config = base.base_config()
  config.name = 'llama2_13b'
  config.model = base.model_config(
      vocab_size=32000 + 2, d_model=5120, n_layers=40, n_heads=40, n_kv_heads=40, head_dim=128, ffn_dim=13824, rope_theta=10000.0, norm_eps=1e-5, max_position=4096,
      param_dtype='bfloat16', dtype='bfloat16')
  config.weights.source = 'hf'
  config.weights.path = ''   # a Hugging Face checkpoint directory; set on the command line
  config.tokenizer.kind = 'sentencepiece'
  config.tokenizer.path = ''   # tokenizer.model / tokenizer.json; set on the command line
  config.tokenizer.chat_template = 'vicuna_v1.1'
  config.mesh.fsdp = 1
  return config
