"""Mean next-token NLL of given answers under a model's params (the prompt is context, not target)."""

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import CausalSpec, Transformer
from apar_jax.training.loss import token_nll


def _rows(prompts: Sequence[Sequence[int]], answers: Sequence[Sequence[int]],
          length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Right-padded (tokens [N, L], targets [N, L], weights [N, L]); weight 1 on answer targets."""
  n = len(prompts)
  tokens = np.zeros((n, length), np.int32)
  targets = np.zeros((n, length), np.int32)
  weights = np.zeros((n, length), np.float32)
  for i, (p, a) in enumerate(zip(prompts, answers)):
    seq = list(p) + list(a)
    if len(seq) > length + 1:
      raise ValueError(f'answer {i} has {len(seq)} tokens with its prompt; raise max_len to '
                       f'{len(seq) - 1}')
    tokens[i, :len(seq) - 1] = seq[:-1]
    targets[i, :len(seq) - 1] = seq[1:]
    weights[i, len(p) - 1:len(seq) - 1] = 1.0  # the positions whose next token is an answer token
  return tokens, targets, weights


def _bucket(length: int) -> int:
  """The padded length of a batch: a power of two >= 64 (few shapes, so few compiles)."""
  return max(64, 1 << (length - 1).bit_length())


def answer_nlls(model: Transformer, params: Any, prompts: Sequence[Sequence[int]],
                answers: Sequence[Sequence[int]], *, batch_size: int = 4,
                max_len: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(NLL sum [N] in nats, answer tokens [N]) of each answer given its prompt, in input order.

  Sequences are batched by length (shortest first) and each batch is padded to a power of two, so a
  few long answers do not make every row long. `max_len`: refuse longer sequences."""
  if not prompts or len(prompts) != len(answers):
    raise ValueError('answer_nll needs as many answers as prompts, at least one')
  if any(not a for a in answers):
    raise ValueError('every answer needs at least one token')
  lengths = [len(p) + len(a) - 1 for p, a in zip(prompts, answers)]
  if max_len and max(lengths) > max_len:
    raise ValueError(f'a sequence has {max(lengths) + 1} tokens with its prompt; raise max_len to '
                     f'{max(lengths)}')

  @jax.jit
  def sums(params, tokens, targets, weights):  # [B, L] each -> (NLL sums [B], counts [B])
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1], dtype=jnp.int32), tokens.shape)
    logits = model.apply({'params': params}, tokens, positions, CausalSpec()).logits
    return jnp.sum(token_nll(logits, targets) * weights, -1), jnp.sum(weights, -1)

  order = np.argsort(lengths, kind='stable')
  totals = np.zeros(len(prompts), np.float64)
  counts = np.zeros(len(prompts), np.float64)
  for start in range(0, len(order), batch_size):
    rows = order[start:start + batch_size]
    length = _bucket(max(lengths[i] for i in rows))
    tokens, targets, weights = _rows([prompts[i] for i in rows], [answers[i] for i in rows], length)
    pad = batch_size - len(rows)
    if pad:  # a fixed batch shape: padded rows carry no weight
      tokens, targets, weights = (np.concatenate([x, np.zeros((pad, length), x.dtype)])
                                  for x in (tokens, targets, weights))
    s, c = sums(params, tokens, targets, weights)
    totals[rows] = np.asarray(s, np.float64)[:len(rows)]
    counts[rows] = np.asarray(c, np.float64)[:len(rows)]
  return totals, counts


def answer_nll(model: Transformer, params: Any, prompts: Sequence[Sequence[int]],
               answers: Sequence[Sequence[int]], *, batch_size: int = 4,
               max_len: int = 0) -> float:
  """Mean NLL per answer token (nats), summed over every answer, then divided once."""
  totals, counts = answer_nlls(model, params, prompts, answers, batch_size=batch_size,
                               max_len=max_len)
  return float(totals.sum() / counts.sum())
