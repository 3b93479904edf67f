"""Mean next-token NLL of given answers under a model's params (the prompt is context, not target)."""

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import tqdm

from apar_jax.model import CausalSpec, Transformer
from apar_jax.speculative import layer_runner
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


BUCKET_STEP = 1024  # above this, padded lengths grow by this many tokens, not by doubling


def _bucket(length: int) -> int:
  """The padded length of a batch: a power of two >= 64 up to BUCKET_STEP, then a multiple of it
  (few shapes, so few compiles; a 5,100-token answer pads to 5,120, not 8,192)."""
  if length > BUCKET_STEP:
    return -(-length // BUCKET_STEP) * BUCKET_STEP
  return max(64, 1 << (length - 1).bit_length())


def _batches(order: Sequence[int], lengths: Sequence[int], batch_size: int,
             max_tokens: int) -> list[tuple[list[int], int, int]]:
  """(rows, padded length, batch rows) groups of `order` (shortest first): at most `batch_size`
  rows and `max_tokens` padded tokens per batch (one row at least), a fixed batch shape per length."""
  out, i = [], 0
  while i < len(order):
    length = _bucket(lengths[order[i]])
    rows = max(1, min(batch_size, max_tokens // length))
    group = [order[i]]
    while (len(group) < rows and i + len(group) < len(order)
           and _bucket(lengths[order[i + len(group)]]) == length):
      group.append(order[i + len(group)])
    out.append((group, length, rows))
    i += len(group)
  return out


def _scorer(cfg: Any, chunk: int):
  """jit (params, tokens, targets, weights [B, L]) -> (NLL sums [B], counts [B]): the model's
  forward up to the final norm, then the LM head and NLL over `chunk` positions at a time, so a long
  answer never holds [B, L, V] logits at once."""
  @jax.jit
  def sums(params, tokens, targets, weights):
    b, length = tokens.shape
    positions = jnp.broadcast_to(jnp.arange(length, dtype=jnp.int32), tokens.shape)
    x = layer_runner.embed(params, cfg, tokens)
    x, _ = layer_runner.run_layers(params, cfg, x, positions, CausalSpec(), None, 0, cfg.n_layers)
    h = layer_runner.final_norm(params, cfg, x)  # [B, L, d]
    c = min(chunk, length)
    split = lambda a: a.reshape((b, length // c, c) + a.shape[2:]).swapaxes(0, 1)  # noqa: E731

    def one(piece):  # [B, c, d], [B, c], [B, c] -> [B]
      hc, tc, wc = piece
      return jnp.sum(token_nll(layer_runner.lm_logits(params, cfg, hc), tc) * wc, -1)

    per_chunk = jax.lax.map(one, (split(h), split(targets), split(weights)))  # [L / c, B]
    return per_chunk.sum(0), jnp.sum(weights, -1)
  return sums


def answer_nlls(model: Transformer, params: Any, prompts: Sequence[Sequence[int]],
                answers: Sequence[Sequence[int]], *, batch_size: int = 4,
                max_len: int = 0, max_tokens: int = 4096,
                progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
  """(NLL sum [N] in nats, answer tokens [N]) of each answer given its prompt, in input order.

  Sequences are batched by length (shortest first), each batch padded to a `_bucket` and holding
  at most `batch_size` rows and `max_tokens` padded tokens (long reassembled APAR answers run alone);
  logits are formed 256 positions at a time. `max_len`: refuse longer sequences."""
  if not prompts or len(prompts) != len(answers):
    raise ValueError('answer_nll needs as many answers as prompts, at least one')
  if any(not a for a in answers):
    raise ValueError('every answer needs at least one token')
  lengths = [len(p) + len(a) - 1 for p, a in zip(prompts, answers)]
  if max_len and max(lengths) > max_len:
    raise ValueError(f'a sequence has {max(lengths) + 1} tokens with its prompt; raise max_len to '
                     f'{max(lengths)}')
  sums = _scorer(model.cfg, 256)
  order = [int(i) for i in np.argsort(lengths, kind='stable')]
  totals = np.zeros(len(prompts), np.float64)
  counts = np.zeros(len(prompts), np.float64)
  batches = _batches(order, lengths, batch_size, max_tokens)
  for rows, length, size in tqdm.tqdm(batches, desc='nll', unit='batch', disable=not progress):
    tokens, targets, weights = _rows([prompts[i] for i in rows], [answers[i] for i in rows], length)
    pad = size - len(rows)
    if pad:  # a fixed batch shape: padded rows carry no weight
      tokens, targets, weights = (np.concatenate([x, np.zeros((pad, length), x.dtype)])
                                  for x in (tokens, targets, weights))
    s, c = sums(params, tokens, targets, weights)
    totals[rows] = np.asarray(s, np.float64)[:len(rows)]
    counts[rows] = np.asarray(c, np.float64)[:len(rows)]
  return totals, counts


def answer_nll(model: Transformer, params: Any, prompts: Sequence[Sequence[int]],
               answers: Sequence[Sequence[int]], *, batch_size: int = 4,
               max_len: int = 0, progress: bool = False) -> float:
  """Mean NLL per answer token (nats), summed over every answer, then divided once."""
  totals, counts = answer_nlls(model, params, prompts, answers, batch_size=batch_size,
                               max_len=max_len, progress=progress)
  return float(totals.sum() / counts.sum())
