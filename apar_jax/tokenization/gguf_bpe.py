"""Building a byte-level BPE `tokenizers.Tokenizer` from a GGUF vocabulary (tokenizer.ggml.model 'gpt2')."""

from __future__ import annotations

import functools

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from apar_jax.tokenization.gguf_vocab import GGUFVocab, TokenType


def _gpt2_split() -> pre_tokenizers.PreTokenizer:
  """GPT-2's regex split, then bytes -> byte-level characters."""
  return pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)


def _digits_then_gpt2() -> pre_tokenizers.PreTokenizer:
  """llama.cpp isolates every \\p{N} first, then splits as GPT-2; these models' own tokenizer.json
  files write the same as Digits(individual) + ByteLevel."""
  return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), _gpt2_split()])


# tokenizer.ggml.pre -> pre-tokenizer: the split each vocabulary's merges were learned with, as
# llama.cpp applies it (llama-vocab.cpp). Only splits checked against a reference are listed; others
# (llama-bpe, qwen2, ...) need their regex and merge rules added with a test.
_PRE_TOKENIZERS = {
    'gpt2': _gpt2_split,
    'smollm': _digits_then_gpt2,
    'starcoder': _digits_then_gpt2,
    'refact': _digits_then_gpt2,
    'codeshell': _digits_then_gpt2,
}
SUPPORTED_PRE_TOKENIZERS: tuple[str, ...] = tuple(_PRE_TOKENIZERS)


@functools.cache
def byte_to_char() -> dict[int, str]:
  """GPT-2's reversible map from bytes to printable characters (printable Latin-1 bytes map to
  themselves, the rest to code points from 256 upwards in byte order)."""
  keep = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1), *range(ord('®'), ord('ÿ') + 1)]
  out, extra = {b: chr(b) for b in keep}, 0
  for b in range(256):
    if b not in out:
      out[b] = chr(256 + extra)
      extra += 1
  return out


def _byte_spelling(token: str) -> str:
  """`token` in the byte-level alphabet (a no-op for tokens already spelled in it)."""
  alphabet = set(byte_to_char().values())
  if set(token) <= alphabet:
    return token
  return ''.join(byte_to_char()[b] for b in token.encode('utf-8'))


def build_byte_level_bpe(vocab: GGUFVocab) -> Tokenizer:
  """A byte-level BPE tokenizer equal to the one llama.cpp runs for this vocabulary.

  Tokens the file marks CONTROL become special added tokens (matched whole in text, skipped by
  `decode(skip_special_tokens=True)`); USER_DEFINED ones plain added tokens. Bytes that no
  token spells are dropped from the input, as in the original tokenizer (no byte fallback).
  """
  if vocab.merges is None:
    raise ValueError("This GGUF declares a byte-level BPE tokenizer ('gpt2') but has no "
                     "tokenizer.ggml.merges; it cannot be rebuilt. Use the model's tokenizer.json.")
  if vocab.pre not in _PRE_TOKENIZERS:
    raise NotImplementedError(
        f'GGUF pre-tokenizer {vocab.pre!r} is not supported (supported: '
        f"{', '.join(SUPPORTED_PRE_TOKENIZERS)}). Load the model's tokenizer.json with kind='hf', "
        "or add its split regex (llama.cpp's llama-vocab.cpp) to _PRE_TOKENIZERS in gguf_bpe.py.")
  special = {TokenType.CONTROL, TokenType.UNKNOWN, TokenType.USER_DEFINED}
  ids: dict[str, int] = {}
  for i, (token, kind) in enumerate(zip(vocab.tokens, vocab.token_types)):
    spelled = token if kind in special else _byte_spelling(token)
    if ids.setdefault(spelled, i) != i:
      raise ValueError(f'GGUF vocabulary spells ids {ids[spelled]} and {i} both {spelled!r}; a '
                       "tokenizer cannot keep both. Use the model's tokenizer.json (kind='hf').")
  merges = []
  for merge in vocab.merges:
    left, sep, right = merge.partition(' ')
    if not sep or ' ' in right:
      raise ValueError(f"Malformed GGUF merge {merge!r}: expected 'left right'.")
    merges.append((left, right))
  tokenizer = Tokenizer(models.BPE(ids, merges, fuse_unk=False, byte_fallback=False))
  tokenizer.pre_tokenizer = _PRE_TOKENIZERS[vocab.pre]()
  tokenizer.decoder = decoders.ByteLevel()
  register_gguf_added_tokens(tokenizer, vocab)
  return tokenizer


def register_gguf_added_tokens(tokenizer: Tokenizer, vocab: GGUFVocab) -> None:
  """CONTROL and UNKNOWN tokens become special added tokens, USER_DEFINED ones plain added tokens
  (llama.cpp matches both whole in text). They are in the vocabulary already: ids do not change."""
  typed = list(zip(vocab.tokens, vocab.token_types))
  tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t, k in typed
                                if k in (TokenType.CONTROL, TokenType.UNKNOWN)])
  tokenizer.add_tokens([AddedToken(t, normalized=False, special=False)
                        for t, k in typed if k == TokenType.USER_DEFINED])
