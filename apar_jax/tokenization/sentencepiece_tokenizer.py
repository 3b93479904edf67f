"""A `Tokenizer` over a sentencepiece model (tokenizer.model), run by the sentencepiece library."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

import sentencepiece as spm

from apar_jax.tokenization.base import Tokenizer
from apar_jax.tokenization.control_tokens import APAR_TOKENS
from apar_jax.tokenization.sentencepiece_proto import PieceType, append_pieces


def _processor(model_proto: bytes) -> spm.SentencePieceProcessor:
  sp = spm.SentencePieceProcessor()
  sp.LoadFromSerializedProto(model_proto)
  return sp


def _has_piece(sp: spm.SentencePieceProcessor, piece: str) -> bool:
  return sp.id_to_piece(sp.piece_to_id(piece)) == piece


class SentencePieceTokenizer(Tokenizer):
  """Sentencepiece with the APAR tokens appended as user-defined pieces.

  Control pieces (`<s>`, `</s>`) and `<unk>` written in the text are encoded as their ids; the text
  between them is encoded piece by piece, each with sentencepiece's dummy space prefix (the
  LLaMA/Vicuna "legacy" behaviour). Text holding the visible-space character U+2581 does not
  round-trip: sentencepiece decodes it as a space.
  """

  def __init__(self, model_proto: bytes, *, add_apar_tokens: bool = True,
               add_bos_default: bool | None = None, extra_stop_ids: Iterable[int] = ()):
    sp = _processor(model_proto)
    self.base_vocab_size = sp.get_piece_size()
    for piece in APAR_TOKENS:
      if _has_piece(sp, piece) and sp.piece_to_id(piece) not in sp.encode(f'x{piece}x'):
        raise ValueError(f'The sentencepiece model has {piece!r} as an ordinary piece, which text '
                         'can split; retrain it with the piece in user_defined_symbols.')
    missing = [p for p in APAR_TOKENS if not _has_piece(sp, p)]
    if add_apar_tokens and missing:
      # User-defined pieces: matched whole in any text, never split.
      sp = _processor(append_pieces(model_proto, [(p, 0.0, PieceType.USER_DEFINED) for p in missing]))
    self._sp = sp
    self.vocab_size = sp.get_piece_size()
    n = self.vocab_size
    control = [i for i in range(n) if sp.is_control(i) or sp.is_unknown(i)]
    self._control_ids = frozenset(control)
    specials = sorted({sp.id_to_piece(i) for i in control if sp.id_to_piece(i)}, key=len, reverse=True)
    self._special_re = re.compile('(' + '|'.join(map(re.escape, specials)) + ')') if specials else None
    optional = lambda i: i if i >= 0 else None  # noqa: E731  sentencepiece says -1 for "none"
    self.add_bos_default = sp.bos_id() >= 0 if add_bos_default is None else add_bos_default
    self._init_special_ids(bos_id=optional(sp.bos_id()), eos_id=optional(sp.eos_id()),
                           pad_id=optional(sp.pad_id()), extra_stop_ids=extra_stop_ids)
    self._skipped_ids = self._control_ids | {i for i in (self.fork_id, self.child_id) if i is not None}

  @property
  def processor(self) -> spm.SentencePieceProcessor:
    """The wrapped `SentencePieceProcessor` (APAR pieces included)."""
    return self._sp

  def encode(self, text: str, add_bos: bool = False) -> list[int]:
    ids: list[int] = []
    if add_bos:
      if self.bos_id is None:
        raise ValueError('add_bos=True, but this sentencepiece model has no BOS piece.')
      ids.append(self.bos_id)
    parts = self._special_re.split(text) if self._special_re else [text]
    for k, part in enumerate(parts):
      if k % 2:  # a captured special-token string
        ids.append(self._sp.piece_to_id(part))
      elif part:
        ids += self._sp.encode(part, out_type=int)
    return ids

  def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
    ids = self._check_ids(ids)
    if skip_special:
      return self._sp.decode([i for i in ids if i not in self._skipped_ids])
    # sentencepiece drops control pieces when decoding; write them out between the runs.
    text, run = [], []
    for i in ids:
      if i in self._control_ids and not self._sp.is_unknown(i):
        text += [self._sp.decode(run), self._sp.id_to_piece(i)]
        run = []
      else:
        run.append(i)
    return ''.join(text) + self._sp.decode(run)

  def token_to_id(self, token: str) -> int | None:
    return self._sp.piece_to_id(token) if _has_piece(self._sp, token) else None

  def id_to_token(self, i: int) -> str:
    self._check_ids([i])
    return self._sp.id_to_piece(int(i))


def load_sentencepiece_tokenizer(path: str, *, add_apar_tokens: bool = True) -> SentencePieceTokenizer:
  """Loads a sentencepiece `.model` file (a directory holding tokenizer.model works too)."""
  candidate = os.path.join(path, 'tokenizer.model') if os.path.isdir(path) else path
  if not os.path.isfile(candidate):
    raise FileNotFoundError(f'No sentencepiece model at {path!r}. Pass a tokenizer.model file '
                            "(kind='sentencepiece'); for a tokenizer.json use kind='hf'.")
  with open(candidate, 'rb') as f:
    proto = f.read()
  try:
    return SentencePieceTokenizer(proto, add_apar_tokens=add_apar_tokens)
  except RuntimeError as e:  # sentencepiece's parse error
    raise ValueError(f'{candidate!r} is not a valid sentencepiece model: {e}') from e
