"""Reading the tokenizer a GGUF file describes (llama.cpp's `tokenizer.ggml.*` metadata)."""

from __future__ import annotations

import dataclasses
import enum
import os
from typing import Any


class TokenType(enum.IntEnum):
  """llama.cpp's `tokenizer.ggml.token_type` values."""
  NORMAL = 1
  UNKNOWN = 2
  CONTROL = 3
  USER_DEFINED = 4
  UNUSED = 5
  BYTE = 6


@dataclasses.dataclass(frozen=True)
class GGUFVocab:
  """A GGUF file's tokenizer metadata, under names that say what each field is."""
  model: str                      # tokenizer.ggml.model: 'gpt2' (byte-level BPE), 'llama' (sentencepiece)
  pre: str | None                 # tokenizer.ggml.pre: the pre-tokenizer ('smollm', 'llama-bpe', ...)
  tokens: list[str]
  token_types: list[int]          # TokenType per token (NORMAL when the file has none)
  scores: list[float] | None      # sentencepiece piece scores
  merges: list[str] | None        # BPE merges, 'left right'
  bos_id: int | None
  eos_id: int | None
  unk_id: int | None
  pad_id: int | None
  eot_id: int | None              # end of turn, when the file names one
  eom_id: int | None              # end of message, when the file names one
  add_bos: bool | None
  add_space_prefix: bool | None
  chat_template: str | None


def _field(reader: Any, key: str) -> Any:
  field = reader.fields.get(key)
  return None if field is None else field.contents()


def read_gguf_vocab(path: str) -> GGUFVocab:
  """Reads the tokenizer metadata of the GGUF file at `path` (tensors are not loaded)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No GGUF file at {path!r}.')
  from gguf import GGUFReader  # imported here: only GGUF files need it

  try:
    reader = GGUFReader(path)
  except Exception as e:  # gguf raises ValueError/struct errors on foreign files
    raise ValueError(f'{path!r} is not a readable GGUF file: {e}') from e
  model = _field(reader, 'tokenizer.ggml.model')
  tokens = _field(reader, 'tokenizer.ggml.tokens')
  if model is None or tokens is None:
    raise ValueError(f'{path!r} has no tokenizer metadata (tokenizer.ggml.model / .tokens); load '
                     "the tokenizer from the model's tokenizer.json (kind='hf') or tokenizer.model "
                     "(kind='sentencepiece') instead.")
  types = _field(reader, 'tokenizer.ggml.token_type')
  g = lambda key: _field(reader, f'tokenizer.ggml.{key}')  # noqa: E731

  def token_id(key: str) -> int | None:  # some converters write -1 (as uint32) for "none"
    value = g(f'{key}_token_id')
    return int(value) if value is not None and 0 <= value < len(tokens) else None

  return GGUFVocab(
      model=model, pre=g('pre'), tokens=tokens,
      token_types=[int(t) for t in types] if types is not None else [TokenType.NORMAL] * len(tokens),
      scores=g('scores'), merges=g('merges'),
      bos_id=token_id('bos'), eos_id=token_id('eos'), unk_id=token_id('unknown'),
      pad_id=token_id('padding'), eot_id=token_id('eot'), eom_id=token_id('eom'),
      add_bos=g('add_bos_token'), add_space_prefix=g('add_space_prefix'),
      chat_template=_field(reader, 'tokenizer.chat_template'))
