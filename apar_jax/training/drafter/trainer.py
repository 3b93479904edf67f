"""Training a Medusa or Hidden Transfer drafter on a frozen base model with self-distilled data.

The base model's features of every row are computed once (`train_data.base_features`); each step then
trains only the drafter: Medusa heads on sampled positions, or Hidden Transfer maps on sampled anchor
positions of a few rows (whose pseudo tokens run through the upper layers). AdamW with warmup and
cosine decay; the train state is checkpointed with orbax every `save_every` steps and a stopped run
resumes from the newest checkpoint. Acceptance (top-k accuracy per future position on held-out rows)
is measured before and after training.
"""

import dataclasses
import os
import sys
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from apar_jax.model import Transformer
from apar_jax.speculative import hidden_transfer, medusa
from apar_jax.training.drafter.objectives import (future_targets, ht_loss, ht_pseudo_logits,
                                                     medusa_loss, topk_hits)
from apar_jax.speculative.layer_runner import lm_logits
from apar_jax.training.drafter.data import Rows


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  kind: str  # 'medusa' | 'hidden_transfer'
  num_heads: int = 3  # future tokens drafted (Medusa heads / HT pseudo tokens)
  transfer_layer: int = 20
  steps: int = 300
  batch: int = 256  # Medusa: positions per step
  rows_per_step: int = 2  # Hidden Transfer: rows per step
  anchors_per_row: int = 32  # Hidden Transfer: anchor positions per row
  learning_rate: float = 1e-3
  warmup_steps: int = 20
  weight_decay: float = 0.0
  save_every: int = 50
  topk_eval: int = 4
  seed: int = 0


@dataclasses.dataclass
class Features:
  rows: Rows
  final: np.ndarray  # [N, L, d] final hidden (after the final norm)
  inner: Optional[np.ndarray]  # [N, L, d] layer-l input (Hidden Transfer)
  labels: np.ndarray  # [N, L, K]
  mask: np.ndarray  # [N, L, K]


def make_features(rows: Rows, final: np.ndarray, inner: Optional[np.ndarray],
                  num_heads: int) -> Features:
  labels, mask = future_targets(rows.tokens, rows.answer, num_heads)
  return Features(rows, final, inner, labels, mask)


def init_drafter(s: TrainSettings, d_model: int) -> Any:
  if s.kind == 'medusa':
    return medusa.init_medusa(s.num_heads, d_model, s.seed)
  if s.kind == 'hidden_transfer':
    return hidden_transfer.init_hidden_transfer(s.num_heads, d_model)
  raise ValueError(f'unknown drafter kind {s.kind!r}; choose medusa or hidden_transfer')


def optimizer(s: TrainSettings) -> optax.GradientTransformation:
  schedule = optax.warmup_cosine_decay_schedule(0.0, s.learning_rate, max(s.warmup_steps, 1),
                                                max(s.steps, s.warmup_steps + 1))
  return optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(schedule, weight_decay=s.weight_decay))


def _anchor_batch(f: Features, rng: np.random.Generator, rows: np.ndarray, per_row: int):
  """Anchors [B, A] drawn among positions whose first target is an answer token."""
  anchors = np.zeros((len(rows), per_row), np.int32)
  for i, r in enumerate(rows):
    ok = np.nonzero(f.mask[r, :, 0])[0]
    anchors[i] = rng.choice(ok, per_row, replace=len(ok) < per_row) if len(ok) else 0
  lab = np.take_along_axis(f.labels[rows], anchors[..., None], axis=1)
  msk = np.take_along_axis(f.mask[rows], anchors[..., None], axis=1)
  return anchors, lab, msk


def make_step(model: Transformer, s: TrainSettings, opt: optax.GradientTransformation):
  """The jitted train step: (dparams, opt_state, base_params, batch) -> (dparams, opt_state, loss,
  accuracy per future position [K])."""
  cfg = model.cfg

  def loss_fn(dparams, base_params, batch):
    if s.kind == 'medusa':
      return medusa_loss(dparams, base_params, cfg, batch['hidden'], batch['labels'],
                         batch['mask'])
    return ht_loss(dparams, base_params, cfg, batch['h_l'], batch['valid'], batch['anchors'],
                   batch['labels'], batch['mask'], s.transfer_layer)

  @jax.jit
  def step(dparams, opt_state, base_params, batch):
    (loss, acc), grads = jax.value_and_grad(loss_fn, has_aux=True)(dparams, base_params, batch)
    updates, opt_state = opt.update(grads, opt_state, dparams)
    return optax.apply_updates(dparams, updates), opt_state, loss, acc

  return step


def sample_batch(f: Features, s: TrainSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
  """One training batch (host arrays)."""
  if s.kind == 'medusa':
    flat = np.flatnonzero(f.mask.any(-1))  # positions with at least one target
    pick = rng.choice(flat, s.batch, replace=len(flat) < s.batch)
    n, t = np.unravel_index(pick, f.mask.shape[:2])
    return {'hidden': f.final[n, t], 'labels': f.labels[n, t], 'mask': f.mask[n, t]}
  rows = rng.choice(f.rows.tokens.shape[0], s.rows_per_step, replace=False)
  anchors, lab, msk = _anchor_batch(f, rng, rows, s.anchors_per_row)
  return {'h_l': f.inner[rows], 'valid': f.rows.valid[rows], 'anchors': anchors, 'labels': lab,
          'mask': msk}


def measure_acceptance(model: Transformer, base_params: Any, dparams: Any, f: Features,
                       s: TrainSettings, anchors_per_row: int = 64, seed: int = 1) -> np.ndarray:
  """acc [K, topk]: fraction of held-out targets equal to the rank-r guess for future position i."""
  cfg = model.cfg
  hits = np.zeros((s.num_heads, s.topk_eval))
  count = np.zeros((s.num_heads, 1))
  if s.kind == 'medusa':
    run = jax.jit(lambda dp, bp, h, lab, m: topk_hits(
        lm_logits(bp, cfg, medusa.head_states(dp, h)), lab, m, s.topk_eval))
    flat = np.flatnonzero(f.mask.any(-1))
    for start in range(0, len(flat), 512):
      idx = flat[start:start + 512]
      idx = np.concatenate([idx, np.full(512 - len(idx), idx[0])])  # one shape
      n, t = np.unravel_index(idx, f.mask.shape[:2])
      m = f.mask[n, t].copy()
      m[len(flat[start:start + 512]):] = False
      hits += np.asarray(run(dparams, base_params, f.final[n, t], f.labels[n, t], m))
      count += m.sum(0)[:, None]
  else:
    run = jax.jit(lambda dp, bp, h, v, a, lab, m: topk_hits(
        ht_pseudo_logits(dp, bp, cfg, h, v, a, s.transfer_layer), lab, m, s.topk_eval))
    rng = np.random.default_rng(seed)
    for r in range(f.rows.tokens.shape[0]):
      anchors, lab, msk = _anchor_batch(f, rng, np.asarray([r]), anchors_per_row)
      _, first = np.unique(anchors[0], return_index=True)  # count each anchor once
      keep = np.zeros_like(msk)
      keep[0, first] = msk[0, first]
      hits += np.asarray(run(dparams, base_params, f.inner[[r]], f.rows.valid[[r]], anchors, lab,
                             keep))
      count += keep[0].sum(0)[:, None]
  return hits / np.maximum(count, 1)


def train(model: Transformer, base_params: Any, f: Features, s: TrainSettings,
          checkpoint_dir: Optional[str] = None, progress: bool = True) -> tuple[Any, dict]:
  """Trains from scratch (or resumes from `checkpoint_dir`); returns (drafter params, log)."""
  from tqdm import tqdm
  dparams = init_drafter(s, model.cfg.d_model)
  opt = optimizer(s)
  opt_state = opt.init(dparams)
  start = 0
  manager = None
  if checkpoint_dir:
    options = ocp.CheckpointManagerOptions(max_to_keep=2, save_interval_steps=s.save_every,
                                           create=True, enable_async_checkpointing=False)
    manager = ocp.CheckpointManager(os.path.abspath(checkpoint_dir), options=options)
    latest = manager.latest_step()
    if latest is not None:
      state = manager.restore(latest, args=ocp.args.StandardRestore(
          {'dparams': dparams, 'opt_state': opt_state}))
      dparams, opt_state, start = state['dparams'], state['opt_state'], int(latest)
      print(f'[train_drafter] resumed from step {start}', file=sys.stderr)
  step = make_step(model, s, opt)
  rng = np.random.default_rng(s.seed + start)
  log = {'loss': [], 'accuracy': []}
  t0 = time.perf_counter()
  bar = tqdm(range(start, s.steps), initial=start, total=s.steps, disable=not progress,
             desc=f'train {s.kind}', file=sys.stderr)
  for i in bar:
    batch = jax.tree.map(jnp.asarray, sample_batch(f, s, rng))
    dparams, opt_state, loss, acc = step(dparams, opt_state, base_params, batch)
    log['loss'].append(float(loss))
    log['accuracy'].append([float(a) for a in acc])
    bar.set_postfix(loss=f'{float(loss):.3f}', acc=' '.join(f'{float(a):.2f}' for a in acc))
    if manager is not None:
      manager.save(i + 1, args=ocp.args.StandardSave({'dparams': dparams, 'opt_state': opt_state}),
                   force=(i + 1 == s.steps))
  if manager is not None:
    manager.wait_until_finished()
    manager.close()
  log['train_seconds'] = time.perf_counter() - t0
  return dparams, log
