"""`load_tokenizer`: one entry point for every tokenizer file kind."""

from __future__ import annotations

import os

from apar_jax.tokenization.base import Tokenizer
from apar_jax.tokenization.gguf_tokenizer import load_gguf_tokenizer
from apar_jax.tokenization.hf_json import load_hf_json_tokenizer
from apar_jax.tokenization.sentencepiece_tokenizer import load_sentencepiece_tokenizer

KINDS: tuple[str, ...] = ('gguf', 'hf', 'sentencepiece')


def load_tokenizer(kind: str, path: str, *, add_apar_tokens: bool = True) -> Tokenizer:
  """Loads a tokenizer and (by default) appends `[Fork]` and `[Child]` to its vocabulary.

  kind: 'gguf' (a .gguf file; its tokenizer.ggml.* metadata), 'hf' (a tokenizer.json file or a
    directory holding one) or 'sentencepiece' (a .model file or a directory holding
    tokenizer.model).
  add_apar_tokens: append the APAR control tokens when the vocabulary lacks them. Without them
    `fork_id`/`child_id` are None (plain autoregressive use; vocabulary size unchanged).
  """
  if kind not in KINDS:
    raise ValueError(f"Unknown tokenizer kind {kind!r}; expected one of {', '.join(KINDS)}.")
  if path == 'default':
    raise ValueError("Tokenizer path 'default' names the default model's GGUF; resolve it to a "
                     'file path first (apar_jax.weights locates the SmolLM2 GGUF).')
  if not os.path.exists(path):
    raise FileNotFoundError(f'Tokenizer path {path!r} does not exist.')
  if kind == 'gguf':
    return load_gguf_tokenizer(path, add_apar_tokens=add_apar_tokens)
  if kind == 'hf':
    return load_hf_json_tokenizer(path, add_apar_tokens=add_apar_tokens)
  return load_sentencepiece_tokenizer(path, add_apar_tokens=add_apar_tokens)
