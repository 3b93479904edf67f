"""Loading a Hugging Face tokenizer.json (and the special tokens its sibling config files name)."""

from __future__ import annotations

import json
import os
from typing import Any

import tokenizers

from apar_jax.tokenization.hf_tokenizer import HFTokenizer

# Used only when no config file names the token.
_BOS_GUESSES = ('<s>', '<|begin_of_text|>', '<bos>', '<|startoftext|>')
_EOS_GUESSES = ('</s>', '<|im_end|>', '<|eot_id|>', '<|endoftext|>', '<|end_of_text|>', '<eos>')
_PAD_GUESSES = ('<pad>', '<|pad|>', '[PAD]', '<|finetune_right_pad_id|>')


def _read_json(directory: str, name: str) -> dict[str, Any]:
  path = os.path.join(directory, name)
  if not os.path.isfile(path):
    return {}
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def _token_text(value: Any) -> str | None:
  """A special token as the config files write it: a string or `{"content": ...}`."""
  if isinstance(value, dict):
    value = value.get('content')
  return value if isinstance(value, str) else None


def _ids(value: Any) -> list[int]:
  """`eos_token_id` as config.json / generation_config.json write it: an int or a list."""
  if isinstance(value, int):
    return [value]
  if isinstance(value, list):
    return [v for v in value if isinstance(v, int)]
  return []


def resolve_tokenizer_json(path: str) -> str:
  """`path` itself if it is a file, else `path/tokenizer.json`; raises with advice if missing."""
  candidate = os.path.join(path, 'tokenizer.json') if os.path.isdir(path) else path
  if not os.path.isfile(candidate):
    raise FileNotFoundError(
        f'No tokenizer.json at {path!r}. Pass a tokenizer.json file or the model directory that '
        "holds it (kind='hf'); for a tokenizer.model use kind='sentencepiece', for a GGUF kind='gguf'.")
  return candidate


def load_hf_json_tokenizer(path: str, *, add_apar_tokens: bool = True) -> HFTokenizer:
  """Loads tokenizer.json; BOS/EOS/PAD come from tokenizer_config.json, special_tokens_map.json,
  generation_config.json or config.json next to it, else from well-known token names."""
  json_path = resolve_tokenizer_json(path)
  try:
    backend = tokenizers.Tokenizer.from_file(json_path)
  except Exception as e:  # tokenizers raises a bare Exception on malformed files
    raise ValueError(f'{json_path!r} is not a valid Hugging Face tokenizer.json: {e}') from e
  directory = os.path.dirname(os.path.abspath(json_path))
  tok_config = {**_read_json(directory, 'special_tokens_map.json'),
                **_read_json(directory, 'tokenizer_config.json')}
  gen_config = {**_read_json(directory, 'config.json'),
                **_read_json(directory, 'generation_config.json')}

  def find(kind: str, guesses: tuple[str, ...]) -> int | None:
    named = _token_text(tok_config.get(f'{kind}_token'))
    for text in ([named] if named else []) + list(guesses):
      i = backend.token_to_id(text)
      if i is not None:
        return i
    return None

  bos_id, eos_id, pad_id = find('bos', _BOS_GUESSES), find('eos', _EOS_GUESSES), find('pad', _PAD_GUESSES)
  config_eos = _ids(gen_config.get('eos_token_id'))
  if eos_id is None and config_eos:
    eos_id = config_eos[0]
  add_bos = tok_config.get('add_bos_token')
  if not isinstance(add_bos, bool):  # infer from the post-processor
    probe = backend.encode('a', add_special_tokens=True).ids
    add_bos = bos_id is not None and bool(probe) and probe[0] == bos_id
  return HFTokenizer(backend, bos_id=bos_id, eos_id=eos_id, pad_id=pad_id, add_bos_default=add_bos,
                     extra_stop_ids=config_eos, add_apar_tokens=add_apar_tokens)
