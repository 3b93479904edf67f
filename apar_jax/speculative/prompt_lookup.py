"""Prompt lookup: draft the continuation of the latest earlier occurrence of the context's last n-gram.

No training, static shapes, pure jnp: over a token buffer [S, N] (prompt + output so far; positions
>= length are ignored) find, for the longest n in max_ngram .. min_ngram that has a match, the latest
start i < length - n with tokens[i : i + n] == tokens[length - n : length], and propose
tokens[i + n : i + n + k] (clipped at length; missing tokens are -1, which verification never accepts).
The draft has one rank: shape [S, k, 1], for `TokenTree.chain(k)`.
"""

import jax
import jax.numpy as jnp


def _latest_match(tokens: jax.Array, lengths: jax.Array, n: int) -> jax.Array:
  """[S] start of the latest earlier occurrence of the last n tokens, or -1."""
  s, size = tokens.shape
  starts = jnp.arange(size)[None]  # [1, N]
  ok = (starts + n < lengths[:, None]) & (lengths[:, None] >= n + 1)  # strictly before the suffix
  for o in range(n):
    suffix_tok = jnp.take_along_axis(tokens, jnp.maximum(lengths - n + o, 0)[:, None], axis=1)
    shifted = jnp.roll(tokens, -o, axis=1)  # shifted[:, i] = tokens[:, i + o]
    ok = ok & (shifted == suffix_tok)
  return jnp.max(jnp.where(ok, starts, -1), axis=1)


def lookup(tokens: jax.Array, lengths: jax.Array, num_draft: int, max_ngram: int = 3,
           min_ngram: int = 1) -> jax.Array:
  """tokens [S, N] int32, lengths [S] -> draft [S, num_draft, 1] int32 (-1 where nothing is found)."""
  if not 1 <= min_ngram <= max_ngram:
    raise ValueError(f'need 1 <= min_ngram <= max_ngram, got {min_ngram}, {max_ngram}')
  if num_draft < 1:
    raise ValueError(f'num_draft must be >= 1, got {num_draft}')
  s, size = tokens.shape
  start = jnp.full((s,), -1, jnp.int32)
  used_n = jnp.zeros((s,), jnp.int32)
  for n in range(max_ngram, min_ngram - 1, -1):  # longest n-gram with a match wins
    found = _latest_match(tokens, lengths, n)
    take = (start < 0) & (found >= 0)
    start = jnp.where(take, found, start)
    used_n = jnp.where(take, n, used_n)
  pos = start[:, None] + used_n[:, None] + jnp.arange(num_draft)[None]  # [S, k]
  valid = (start[:, None] >= 0) & (pos < lengths[:, None])
  draft = jnp.take_along_axis(tokens, jnp.clip(pos, 0, size - 1), axis=1)
  return jnp.where(valid, draft, -1).astype(jnp.int32)[..., None]
