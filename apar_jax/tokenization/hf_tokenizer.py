"""A `Tokenizer` over a Hugging Face `tokenizers.Tokenizer` (tokenizer.json, or built from a GGUF)."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import tokenizers

from apar_jax.tokenization.base import Tokenizer
from apar_jax.tokenization.control_tokens import APAR_TOKENS, FORK_TOKEN


def _next_free_id(backend: tokenizers.Tokenizer) -> int:
  """One past the largest id the backend knows (added tokens included)."""
  return max(backend.get_vocab(with_added_tokens=True).values(), default=-1) + 1


def register_special_tokens(backend: tokenizers.Tokenizer, tokens: Iterable[str]) -> None:
  """Marks `tokens` as special added tokens: matched whole in any text, never split, never
  normalized, dropped by `decode(skip_special_tokens=True)`. Tokens already in the vocabulary keep
  their ids; new ones are appended at the end, in order."""
  backend.add_special_tokens(
      [tokenizers.AddedToken(t, single_word=False, lstrip=False, rstrip=False, normalized=False,
                             special=True) for t in tokens])


class HFTokenizer(Tokenizer):
  """Wraps a `tokenizers.Tokenizer`; appends `[Fork]`/`[Child]` unless the vocabulary has them.

  Encoding never runs the backend's post-processor (BOS is added here, on request), so a
  tokenizer.json whose template adds BOS still encodes plain text without it.
  """

  def __init__(self, backend: tokenizers.Tokenizer, *, bos_id: int | None, eos_id: int | None,
               pad_id: int | None, add_bos_default: bool, extra_stop_ids: Iterable[int] = (),
               add_apar_tokens: bool = True):
    self._backend = backend
    self.base_vocab_size = _next_free_id(backend)
    if add_apar_tokens:
      register_special_tokens(backend, APAR_TOKENS)
    self.vocab_size = _next_free_id(backend)
    self.add_bos_default = add_bos_default
    self._init_special_ids(bos_id=bos_id, eos_id=eos_id, pad_id=pad_id,
                           extra_stop_ids=extra_stop_ids)
    if add_apar_tokens:
      appended = [i for i in (self.fork_id, self.child_id) if i >= self.base_vocab_size]
      if appended != list(range(self.base_vocab_size, self.vocab_size)):
        raise AssertionError(f'APAR tokens got ids {self.fork_id}, {self.child_id}; expected '
                             f'them at the end of a {self.base_vocab_size}-id vocabulary.')
    if self.fork_id is not None:
      self._warn_if_text_shifts_around(FORK_TOKEN)

  def _warn_if_text_shifts_around(self, token: str) -> None:
    """Warns when text next to an added token does not survive encode + decode, as with a
    sentencepiece-style tokenizer.json that puts a space prefix after every added token."""
    probe = f'a{token}b'
    got = self.decode(self.encode(probe), skip_special=False)
    if got != probe:
      warnings.warn(f'This tokenizer changes the text around {token}: {probe!r} comes back as '
                    f'{got!r}, so APAR branches would not join cleanly. For a LLaMA-style model '
                    "load its tokenizer.model with kind='sentencepiece' instead.", stacklevel=3)

  @property
  def backend(self) -> tokenizers.Tokenizer:
    """The wrapped `tokenizers.Tokenizer` (APAR tokens included)."""
    return self._backend

  def encode(self, text: str, add_bos: bool = False) -> list[int]:
    ids = self._backend.encode(text, add_special_tokens=False).ids
    if add_bos:
      if self.bos_id is None:
        raise ValueError('add_bos=True, but this tokenizer has no BOS token.')
      ids = [self.bos_id, *ids]
    return ids

  def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
    return self._backend.decode(self._check_ids(ids), skip_special_tokens=skip_special)

  def token_to_id(self, token: str) -> int | None:
    return self._backend.token_to_id(token)

  def id_to_token(self, i: int) -> str:
    (i,) = self._check_ids([i])
    token = self._backend.id_to_token(i)
    if token is None:
      raise ValueError(f'Token id {i} is not in the vocabulary (a gap in its ids).')
    return token
