"""Streaming detokenization: token ids in, text pieces out."""

from __future__ import annotations

from collections.abc import Sequence

from apar_jax.tokenization.base import Tokenizer

_INCOMPLETE = '\ufffd'  # what decoders write for a UTF-8 sequence cut short


class IncrementalDecoder:
  """Turns a stream of token ids into text, piece by piece.

  The pieces `push` returns (plus `flush` at the end) concatenate to `tokenizer.decode(all ids)`.
  Text is held back while it ends in an incomplete UTF-8 sequence (a character split across
  byte tokens). Each step decodes a short window of recent tokens twice and emits the difference,
  so rules that depend on neighbours (sentencepiece drops the space of the first piece) come out
  as in a full decode.

  `context`: ids that precede the stream but are not part of it, e.g. the parent's tokens up to a
  `[Fork]` when streaming a child branch; they are decoded for spacing, never emitted. Without
  it a sentencepiece stream that starts with `▁word` yields `word`, as `decode` does.
  """

  def __init__(self, tokenizer: Tokenizer, *, skip_special: bool = True, context: Sequence[int] = ()):
    self._tokenizer = tokenizer
    self._skip_special = skip_special
    self._ids = [int(i) for i in context]
    self._start = 0                  # first id of the decoding window
    self._emitted = len(self._ids)   # ids before this have had their text emitted

  def _decode(self, ids: Sequence[int]) -> str:
    return self._tokenizer.decode(ids, skip_special=self._skip_special)

  def _advance(self, force: bool) -> str:
    done = self._decode(self._ids[self._start:self._emitted])
    text = self._decode(self._ids[self._start:])
    if not force and (len(text) <= len(done) or text.endswith(_INCOMPLETE)):
      return ''
    new = text[len(done):]
    # Slide the window: keep the tokens just emitted as context for the next step.
    self._ids = self._ids[self._emitted:]
    self._start, self._emitted = 0, len(self._ids)
    return new

  def push(self, token_id: int) -> str:
    """Adds one token; returns the text it completes (often '', e.g. mid-character)."""
    self._ids.append(int(token_id))
    return self._advance(force=False)

  def flush(self) -> str:
    """Returns the text still held back (an incomplete character comes out as U+FFFD)."""
    return self._advance(force=True)
