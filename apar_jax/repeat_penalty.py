"""Penalties against repeating what a row has already written: `repetition_penalty` and
`no_repeat_ngram`, applied to fp32 logits before temperature / top-k / top-p.

- repetition penalty p (1.0 = off): every token that occurs in the row's history has its logit divided
  by p where positive and multiplied by p where negative (the CTRL paper's rule, as Hugging Face
  `repetition_penalty` applies it);
- no repeat n-gram n (0 = off): a token that would complete an n-gram already present in the history
  is banned (logit -inf), as Hugging Face `no_repeat_ngram_size`.

The history is what the row wrote itself (an engine branch: its own outputs), not the prompt. Ids in
`exempt` (control tokens such as `[Fork]`) are never penalised. A row whose `penalize_symbols` is
False spares `symbols` (the tokens without a letter: digits, punctuation, `**`, newlines) from the
repetition penalty, so a list's scaffolding stays as likely as before while repeated words are
penalised; the n-gram ban still covers them (a run of scaffolding alone is a loop too). Settings are
per row, so one compiled function serves mixed requests; a row with p = 1 and n = 0 keeps its logits
exactly.
"""

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

NEG_INF = -jnp.inf
MAX_NGRAM = 16  # largest `no_repeat_ngram` (the matcher unrolls n - 1 comparisons)


def check_repeat_settings(repetition_penalty: float, no_repeat_ngram: int) -> None:
  """Raises ValueError on settings `penalize_repeats` cannot honour."""
  if not 0 < repetition_penalty < float('inf'):
    raise ValueError(f'repetition_penalty must be finite and > 0 (1.0 = off), got '
                     f'{repetition_penalty}')
  if not (no_repeat_ngram == 0 or 2 <= no_repeat_ngram <= MAX_NGRAM):
    raise ValueError(f'no_repeat_ngram must be 0 (off) or in [2, {MAX_NGRAM}], got '
                     f'{no_repeat_ngram}')


def seen_tokens(history: jax.Array, length: jax.Array, vocab: int) -> jax.Array:
  """[B, V] bool: tokens among `history [B, L]`'s first `length [B]` entries."""
  b, l = history.shape
  valid = jnp.arange(l)[None, :] < length[:, None]  # [B, L]
  cols = jnp.where(valid, history, vocab)  # out of range = dropped
  return jnp.zeros((b, vocab), bool).at[jnp.arange(b)[:, None], cols].set(True, mode='drop')


def ngram_completions(history: jax.Array, length: jax.Array, n: jax.Array, vocab: int) -> jax.Array:
  """[B, V] bool: tokens t such that history[length-n+1:length] + [t] already occurs in history.

  history [B, L] int32, length [B], n [B] (0 = nothing banned; n <= MAX_NGRAM). Position i of the
  history is a completion when the n - 1 tokens before it equal the last n - 1 written."""
  b, l = history.shape
  pos = jnp.arange(l)[None, :]  # [1, L]
  n = n[:, None]  # [B, 1]
  match = (pos < length[:, None]) & (pos >= n - 1) & (n >= 2) & (length[:, None] >= n)
  for k in range(1, MAX_NGRAM):  # compare the k-th token before i with the k-th before the end
    before_i = jnp.take_along_axis(history, jnp.maximum(pos - k, 0).repeat(b, 0), axis=1)
    before_end = jnp.take_along_axis(history, jnp.maximum(length - k, 0)[:, None], axis=1)
    match &= (k >= n) | (before_i == before_end)
  cols = jnp.where(match, history, vocab)
  return jnp.zeros((b, vocab), bool).at[jnp.arange(b)[:, None], cols].set(True, mode='drop')


def letterless_ids(texts: Sequence[str]) -> tuple[int, ...]:
  """Ids whose text (`texts[i]`: token i decoded alone) has no letter (a vocabulary's `symbols`)."""
  return tuple(i for i, text in enumerate(texts) if not any(c.isalpha() for c in text))


def _vocab_mask(vocab: int, ids: Sequence[int]) -> jax.Array:
  """[V] bool: True at `ids`."""
  mask = jnp.zeros((vocab,), bool)
  return mask.at[jnp.asarray(tuple(ids), jnp.int32)].set(True) if ids else mask


def penalize_repeats(logits: jax.Array, history: jax.Array, length: jax.Array,
                     repetition_penalty: jax.Array, no_repeat_ngram: jax.Array,
                     exempt: Sequence[int] = (), symbols: Sequence[int] = (),
                     penalize_symbols: Optional[jax.Array] = None) -> jax.Array:
  """logits [B, V] with each row's penalties applied (see the module docstring).

  history [B, L] int32 (the row's own tokens, `length [B]` of them valid); repetition_penalty [B] f32;
  no_repeat_ngram [B] int32; penalize_symbols [B] bool (None = True on every row)."""
  vocab = logits.shape[-1]
  keep = ~_vocab_mask(vocab, exempt)  # [V]
  seen = seen_tokens(history, length, vocab) & keep  # [B, V]
  banned = ngram_completions(history, length, no_repeat_ngram, vocab) & keep
  if symbols and penalize_symbols is not None:
    seen &= penalize_symbols[:, None] | ~_vocab_mask(vocab, symbols)[None, :]
  p = repetition_penalty[:, None].astype(logits.dtype)
  penalised = jnp.where(logits > 0, logits / p, logits * p)
  logits = jnp.where(seen & (p != 1), penalised, logits)
  return jnp.where(banned, NEG_INF, logits)
