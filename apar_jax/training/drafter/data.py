"""Drafter training data: self-distilled answers as padded rows, and the frozen base model's
features of every row (computed once, since the base never changes during drafter training).

Rows [N, L]: prompt ids then answer ids (truncated at L), right-padded; `answer [N, L]` marks answer
tokens (the only ones a drafter is trained to predict). Records come from ShareGPT JSONL: with exact
ids (`prompt_ids`, `answer_ids`, as written by self_distill.py) or as text, tokenised here.
"""

import dataclasses
import json
import os
import sys
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import CausalSpec, Transformer
from apar_jax.speculative.layer_runner import forward_with_layer_hidden


@dataclasses.dataclass
class Rows:
  tokens: np.ndarray  # [N, L] int32
  valid: np.ndarray  # [N, L] bool: real tokens
  answer: np.ndarray  # [N, L] bool: answer tokens


def read_examples(path: str, tokenizer: Any = None, chat_template: str = 'chatml',
                  where: str = '') -> list[tuple[list[int], list[int]]]:
  """(prompt ids, answer ids) of each record of a ShareGPT JSONL file; `where` ('field=value,...',
  e.g. 'temperature=0' for the distill command's greedy answers) keeps only the records that hold
  those settings."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'drafter training data {path!r} does not exist: generate it with '
                            '--config.drafter.generate_answers=N or the distill command')
  from apar_jax.apar_data.record_where import matches, parse_where
  wanted = parse_where(where, 'drafter.data_where')
  with open(path, encoding='utf-8') as f:
    records = [(n, json.loads(line)) for n, line in enumerate(f, 1) if line.strip()]
  total = len(records)
  records = [(n, rec) for n, rec in records if matches(rec, wanted)]
  left_out = total - len(records)
  if wanted:
    print(f'[train_drafter] data_where={where}: {len(records)} records kept, {left_out} left out',
          file=sys.stderr)
  out = []
  for n, rec in records:
    if 'prompt_ids' in rec and 'answer_ids' in rec:
      out.append((list(rec['prompt_ids']), list(rec['answer_ids'])))
      continue
    if tokenizer is None:
      raise ValueError(f'{path}:{n}: the record has no token ids and no tokenizer was given')
    from apar_jax.apar_data.sharegpt import exchanges
    from apar_jax.tokenization import encode_chat
    # A cut answer (`finished: false`, hit the distiller's budget) and one the APAR filters dropped
    # (`kept: false`, e.g. a loop) are still the base model's own text, which is what a drafter
    # predicts: keep all of it (a cut one without EOS).
    end = [] if rec.get('finished') is False else [tokenizer.eos_id]
    for ex in exchanges([{k: v for k, v in rec.items() if k not in ('finished', 'kept')}]):
      prompt = encode_chat(tokenizer, list(ex.messages), chat_template)
      out.append((prompt, tokenizer.encode(ex.answer) + end))
  if not out:
    hint = (f' ({left_out} records left out by drafter.data_where={where!r}: loosen it)'
            if wanted else '')
    raise ValueError(f'{path} holds no examples{hint}')
  return out


def make_rows(examples: list[tuple[list[int], list[int]]], seq_len: int,
              max_prompt: Optional[int] = None) -> Rows:
  """Padded rows; prompts longer than `max_prompt` keep their last `max_prompt` tokens."""
  n = len(examples)
  tokens = np.zeros((n, seq_len), np.int32)
  valid = np.zeros((n, seq_len), bool)
  answer = np.zeros((n, seq_len), bool)
  for i, (prompt, ans) in enumerate(examples):
    if max_prompt is not None:
      prompt = prompt[-max_prompt:]
    seq = (list(prompt) + list(ans))[:seq_len]
    tokens[i, :len(seq)] = seq
    valid[i, :len(seq)] = True
    answer[i, len(prompt):len(seq)] = True
  return Rows(tokens, valid, answer)


def base_features(model: Transformer, params: Any, rows: Rows, transfer_layer: Optional[int],
                  batch: int = 4, progress: bool = True) -> tuple[np.ndarray, Optional[np.ndarray]]:
  """Frozen features of every row: (final hidden [N, L, d] after the final norm, hidden entering
  `transfer_layer` [N, L, d] or None). fp32 numpy; computed in batches of `batch` rows."""
  layer = model.cfg.n_layers if transfer_layer is None else transfer_layer

  @jax.jit
  def run(p, tokens, valid):
    positions = jnp.broadcast_to(jnp.arange(tokens.shape[1], dtype=jnp.int32), tokens.shape)
    out, h = forward_with_layer_hidden(model, p, tokens, positions, CausalSpec(valid), None, layer)
    return out.hidden, h

  n = rows.tokens.shape[0]
  finals, inner = [], []
  for start in range(0, n, batch):
    idx = np.arange(start, start + batch) % n  # pad the last batch by wrapping (one shape)
    hid, h = run(params, jnp.asarray(rows.tokens[idx]), jnp.asarray(rows.valid[idx]))
    keep = min(batch, n - start)
    finals.append(np.asarray(hid[:keep], np.float32))
    if transfer_layer is not None:
      inner.append(np.asarray(h[:keep], np.float32))
    if progress:
      print(f'\r[train_drafter] base features {min(start + batch, n)}/{n} rows', end='',
            file=sys.stderr, flush=True)
  if progress:
    print(file=sys.stderr)
  return np.concatenate(finals), (np.concatenate(inner) if transfer_layer is not None else None)
