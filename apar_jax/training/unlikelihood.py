"""Token-level unlikelihood on the roots of APAR trees: a loss against a root repeating its words.

A root branch writes only the list's titles (its children write the details), and greedy decoding of
a small model repeats such a list: one title 40-50 times, each forked. Unlikelihood training
(Welleck et al., 2019) adds, at every target position, `-log(1 - p(c))` for each candidate `c`: a
token the branch has already written in its answer (the prompt excluded) that is not the target.
Each distinct token counts once per position. Only targets inside a tree's root branch (a branch
with children) get the term; children and plain answers keep the plain next-token loss. An optional
[V] mask limits the candidates (e.g. to word tokens: `word_token_mask`), so list syntax (numbers,
`**`, `:`, newlines, `[Fork]`) that every title repeats by design is left alone.
"""

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.apar_data.packing import tree_root_tokens
from apar_jax.tokenization import Tokenizer

_EPS = 1e-6
UNLIKELIHOOD_CANDIDATES = ('all', 'words')  # every earlier answer token | only word tokens


def repeat_candidates(tokens: jax.Array, targets: jax.Array, weights: jax.Array,
                      branch_ids: jax.Array, apply_at: jax.Array) -> jax.Array:
  """[B, T, T] bool: [b, t, s] when token s is a candidate at target position t.

  tokens, targets, branch_ids [B, T] int32; weights [B, T] (> 0 at a loss target); apply_at [B, T]
  bool (the target positions that get the term). A branch's tokens are contiguous in a packed row,
  so token s belongs to the branch's answer when position s - 1 of the same branch is a target."""
  same_as_prev = jnp.pad(branch_ids[:, 1:] == branch_ids[:, :-1], ((0, 0), (1, 0)))  # [B, T]
  answer = same_as_prev & jnp.pad(weights[:, :-1] > 0, ((0, 0), (1, 0)))  # [B, T]
  same_branch = branch_ids[:, :, None] == branch_ids[:, None, :]  # [B, T, T]
  t_idx = jnp.arange(tokens.shape[1])
  earlier = t_idx[None, :] < t_idx[:, None]  # [T, T]: [s', s] with s' < s
  same_token = tokens[:, :, None] == tokens[:, None, :]  # [B, T, T]
  seen_before = jnp.any(same_token & same_branch & answer[:, :, None] & earlier.T[None], axis=1)
  first = answer & ~seen_before  # [B, T]: the first time the branch's answer writes this token
  written = t_idx[None, :] <= t_idx[:, None]  # [T, T]: [t, s] with s <= t (the context of t)
  not_target = tokens[:, None, :] != targets[:, :, None]  # [B, T, T]
  return (same_branch & written[None] & first[:, None, :] & not_target
          & (apply_at & (weights > 0))[:, :, None])


def word_token_mask(tokenizer: Tokenizer, vocab_size: int) -> np.ndarray:
  """[vocab_size] bool: the token's text holds a letter (control tokens, digits, punctuation and
  whitespace do not; nor do ids past the tokenizer's vocabulary)."""
  mask = np.zeros((vocab_size,), bool)
  for i in range(min(vocab_size, tokenizer.vocab_size)):
    mask[i] = any(ch.isalpha() for ch in tokenizer.decode([i], skip_special=True))
  return mask


def root_unlikelihood_sum(logits: jax.Array, batch: dict[str, jax.Array],
                          candidate_vocab: Optional[jax.Array] = None) -> jax.Array:
  """logits [B, T, V] fp32 and the packed batch -> [] the summed unlikelihood of tree roots;
  `candidate_vocab` [V] bool, when given, keeps only those tokens as candidates."""
  apply_at = tree_root_tokens(batch['branch_ids'], batch['branch_parent'])  # [B, T]
  cand = repeat_candidates(batch['tokens'], batch['targets'], batch['weights'],
                           batch['branch_ids'], apply_at)  # [B, T, T]
  if candidate_vocab is not None:
    cand = cand & candidate_vocab[batch['tokens']][:, None, :]
  logz = jax.nn.logsumexp(logits, axis=-1, keepdims=True)  # [B, T, 1]
  index = jnp.broadcast_to(batch['tokens'][:, None, :], cand.shape)  # [B, T, T]
  prob = jnp.exp(jnp.take_along_axis(logits, index, axis=-1) - logz)  # [B, T, T]
  penalty = -jnp.log(jnp.clip(1.0 - prob, _EPS, 1.0))
  return jnp.sum(jnp.where(cand, penalty, 0.0))
