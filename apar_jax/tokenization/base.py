"""The tokenizer interface every backend implements."""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence

from apar_jax.tokenization.control_tokens import CHILD_TOKEN, END_OF_TURN_TOKENS, FORK_TOKEN


class Tokenizer(abc.ABC):
  """Text <-> token ids, with the special ids the engine needs.

  Attributes:
    vocab_size: number of ids, the APAR tokens included (rows the embedding must have).
    base_vocab_size: number of ids the file itself describes (rows a checkpoint of the model has).
      When the file already holds `[Fork]`/`[Child]` nothing is appended and it equals `vocab_size`.
    bos_id: beginning-of-sequence id, or None when the vocabulary has none.
    eos_id: end-of-sequence id.
    pad_id: padding id (the file's, else EOS).
    fork_id, child_id: ids of `[Fork]` and `[Child]`; None only when loaded with
      `add_apar_tokens=False` from a file that lacks them.
    stop_ids: ids that end a branch: EOS and the end-of-turn tokens the vocabulary has.
    add_bos_default: whether the model's own pipeline puts BOS before a prompt (used by
      `encode_chat` when not told).
  """

  vocab_size: int
  base_vocab_size: int
  bos_id: int | None
  eos_id: int
  pad_id: int
  fork_id: int | None
  child_id: int | None
  stop_ids: tuple[int, ...]
  add_bos_default: bool

  @abc.abstractmethod
  def encode(self, text: str, add_bos: bool = False) -> list[int]:
    """Token ids of `text`. Special-token strings in the text (`[Fork]`, `<|im_start|>`, ...)
    become their single ids. Never appends EOS."""

  @abc.abstractmethod
  def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
    """Text of `ids`; with `skip_special`, control tokens (BOS, EOS, `[Fork]`, ...) are dropped."""

  @abc.abstractmethod
  def token_to_id(self, token: str) -> int | None:
    """Id of a vocabulary entry spelled as the vocabulary spells it, or None."""

  @abc.abstractmethod
  def id_to_token(self, i: int) -> str:
    """Vocabulary entry of id `i` (as the vocabulary spells it, e.g. `Ġthe` or `▁the`)."""

  def _init_special_ids(self, *, bos_id: int | None, eos_id: int | None, pad_id: int | None,
                        extra_stop_ids: Iterable[int] = ()) -> None:
    """Sets the special-id attributes from the backend's vocabulary (call after the APAR tokens)."""
    if eos_id is None:
      raise ValueError('The tokenizer has no end-of-sequence token; the engine needs one to end '
                       'branches. Use a tokenizer file that names its EOS token.')
    self.bos_id = bos_id
    self.eos_id = eos_id
    self.pad_id = eos_id if pad_id is None else pad_id
    self.fork_id = self.token_to_id(FORK_TOKEN)
    self.child_id = self.token_to_id(CHILD_TOKEN)
    stops = [eos_id, *extra_stop_ids]
    stops += [i for i in map(self.token_to_id, END_OF_TURN_TOKENS) if i is not None]
    self.stop_ids = tuple(dict.fromkeys(stops))

  def _check_ids(self, ids: Sequence[int]) -> list[int]:
    """`ids` as Python ints; raises on an id outside the vocabulary."""
    out = [int(i) for i in ids]
    bad = [i for i in out if not 0 <= i < self.vocab_size]
    if bad:
      raise ValueError(f'Token ids {bad[:5]} are outside the vocabulary [0, {self.vocab_size}).')
    return out

  def __repr__(self) -> str:
    return (f'{type(self).__name__}(vocab_size={self.vocab_size}, base_vocab_size='
            f'{self.base_vocab_size}, bos_id={self.bos_id}, eos_id={self.eos_id}, '
            f'fork_id={self.fork_id}, child_id={self.child_id})')
