"""The training loop: data -> sharded jitted steps -> checkpoints, metrics, the exported adapter.

    result = train(config)            # config.train.* (see configs/apar_smollm2_135m.py)

Resumes from the newest checkpoint in `train.checkpoint_dir`; batches are a function of the step, so
an interrupted and resumed run ends in the same state as an uninterrupted one. The same code runs on
one device or a (data, fsdp, tensor) mesh: the batch is split over data x fsdp, the params follow the
config's sharding rules, the LoRA weights are replicated.

In a multi-process job every process runs this same code on the same data (each builds the rows and
places its part of every batch); the checkpoints and the exported adapter are written by all of them
together (orbax), the logs, TensorBoard events and progress bar by process 0 alone.
"""

import contextlib
import dataclasses
import json
import os
import sys
import time
from typing import Any, Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec
from tqdm import tqdm

from apar_jax import distributed, sharding
from apar_jax.apar_data.dataset import TREE_KINDS, DataStats, batch_rows, build_rows
from apar_jax.apar_data.packing import (PackedRows, weight_list_ends, weight_targets,
                                        weight_tree_roots)
from apar_jax.model import CausalSpec, build_model
from apar_jax.tokenization import Tokenizer
from apar_jax.weights.adapter_io import save_adapter
from apar_jax.training.base_model import without_adapter
from apar_jax.training.checkpoints import TrainCheckpoints
from apar_jax.training.loss import loss_sums_fn
from apar_jax.training.unlikelihood import UNLIKELIHOOD_CANDIDATES, word_token_mask
from apar_jax.training.optimizer import learning_rate_schedule, make_optimizer
from apar_jax.training.plot import METRICS_FILE
from apar_jax.training.train_step import init_state, make_train_step
from apar_jax.training.trainable import adapter_of, split_trainable


@dataclasses.dataclass
class TrainResult:
  state: Any  # {'step', 'trainable', 'opt_state'}
  stats: DataStats
  start_step: int  # step the run resumed from (0 for a fresh run)
  end_step: int
  exported: Optional[str]  # adapter / params directory written at the end, if finished
  tokens_per_s: float  # non-padding tokens per second over this run's steps (after the first)


def _mesh_context(mesh: jax.sharding.Mesh, config: ml_collections.ConfigDict):
  """Mesh + logical rules for tracing. `with mesh` (not jax.set_mesh): under set_mesh, Flax's
  param-shape check re-runs DenseGeneral's init, whose reshaped kernel fails its logical constraint."""
  stack = contextlib.ExitStack()
  stack.enter_context(mesh)
  stack.enter_context(nn.logical_axis_rules(sharding.logical_rules(config)))
  return stack


def _check(tc: ml_collections.ConfigDict, mesh: jax.sharding.Mesh) -> tuple[int, int]:
  """(accumulation steps, rows per micro-batch); the micro-batch must split over data x fsdp."""
  batch, accum = int(tc.batch_size), int(tc.grad_accum)
  if batch < 1 or accum < 1 or batch % accum:
    raise ValueError(f'train.batch_size ({batch}) must be a positive multiple of train.grad_accum '
                     f'({accum})')
  micro = batch // accum
  split = mesh.shape['data'] * mesh.shape['fsdp']
  if micro % split:
    raise ValueError(f'a micro-batch of {micro} rows (batch_size / grad_accum) cannot be split over '
                     f'data x fsdp = {split} devices: make it a multiple of {split}')
  return accum, micro


def _load_params(config: ml_collections.ConfigDict, shardings: Any) -> Any:
  """The base params: training starts from the base model, never from `weights.adapter`."""
  from apar_jax.weights import load_params
  return load_params(without_adapter(config), shardings=shardings)


def _batch(rows: PackedRows, idx: np.ndarray, accum: int, micro: int,
           batch_sharding: NamedSharding) -> dict[str, jax.Array]:
  """Rows `idx` as [A, M, ...] arrays placed over the mesh (rows split over data x fsdp)."""
  arrays = rows.take(idx)
  return {k: jax.device_put(v.reshape((accum, micro) + v.shape[1:]), batch_sharding)
          for k, v in arrays.items()}


def _log_metrics(writer: Any, log_dir: str, step: int, metrics: dict[str, float]) -> None:
  """TensorBoard scalars (flushed at once) and a line of `METRICS_FILE`."""
  for tag, value in metrics.items():
    writer.add_scalar(tag, value, step)
  writer.flush()
  with open(os.path.join(log_dir, METRICS_FILE), 'a', encoding='utf-8') as f:
    f.write(json.dumps({'step': step, **metrics}) + '\n')


def train(config: ml_collections.ConfigDict, *, tokenizer: Optional[Tokenizer] = None,
          base_params: Any = None, stop_after: Optional[int] = None,
          progress: bool = True) -> TrainResult:
  """Runs (or resumes) `config.train`; `stop_after` ends this call early at that step (a stop)."""
  tc = config.train
  root_weight = float(tc.get('root_loss_weight', 1.0))
  unlikelihood = float(tc.get('root_unlikelihood_weight', 0.0))
  candidates = str(tc.get('unlikelihood_candidates', 'all'))
  if candidates not in UNLIKELIHOOD_CANDIDATES:
    raise ValueError(f'train.unlikelihood_candidates={candidates!r}: choose one of '
                     f'{", ".join(UNLIKELIHOOD_CANDIDATES)}')
  for name, value, neutral in (('root_loss_weight', root_weight, 1.0),
                               ('root_unlikelihood_weight', unlikelihood, 0.0)):
    if value < 0:
      raise ValueError(f'train.{name} must be >= 0, got {value}')
    if value != neutral and tc.layout != 'packed':
      raise ValueError(f"train.{name}={value} needs train.layout='packed' (in '{tc.layout}' every "
                       f'branch is a row of its own): set --config.train.layout=packed or leave it '
                       f'at {neutral:g}')
  end_weight = float(tc.get('list_end_weight', 1.0))
  if end_weight < 0:
    raise ValueError(f'train.list_end_weight must be >= 0, got {end_weight}')
  if tokenizer is None:
    from apar_jax.runtime import load_tokenizer_from_config
    tokenizer = load_tokenizer_from_config(config)
  if tokenizer.vocab_size > config.model.vocab_size:
    raise ValueError(f'the tokenizer has {tokenizer.vocab_size} tokens but model.vocab_size is '
                     f'{config.model.vocab_size}: set --config.model.vocab_size={tokenizer.vocab_size}')
  rows, stats = build_rows(
      tc.data_path, tokenizer, chat_template=config.tokenizer.chat_template,
      system_prompt=config.tokenizer.system_prompt, layout=tc.layout,
      plain_fraction=float(tc.plain_fraction), seq_len=int(tc.seq_len),
      max_branches=int(tc.max_branches), seed=int(tc.seed), max_exchanges=int(tc.max_exchanges),
      unfinished=str(tc.unfinished), tree_kinds=tc.get('tree_kinds', TREE_KINDS),
      excluded_trees=str(tc.get('excluded_trees', 'plain')),
      salvage_budget_cuts=bool(tc.get('salvage_budget_cuts', False)),
      list_demo_only=bool(tc.get('list_demo_only', False)),
      list_demo_name=str(tc.get('list_demo_name', '')),
      list_answers_where=str(tc.get('list_answers_where', '')),
      list_answers_counted=bool(tc.get('list_answers_counted', False)))
  print(f'[train] data: {stats.summary()}', file=sys.stderr)
  fork_weight = float(tc.get('fork_loss_weight', 1.0))
  if fork_weight != 1.0:
    rows = weight_targets(rows, tokenizer.fork_id, fork_weight)
  if root_weight != 1.0:
    rows = weight_tree_roots(rows, root_weight)
  if end_weight != 1.0:
    rows = weight_list_ends(rows, tokenizer.fork_id, end_weight)

  model = build_model(config.model)
  mesh = distributed.make_global_mesh(config.mesh)  # data across hosts in a multi-process job
  accum, micro = _check(tc, mesh)
  total = int(tc.total_steps)
  schedule = learning_rate_schedule(tc)
  tx = make_optimizer(tc)
  with _mesh_context(mesh, config):
    example = (jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32), CausalSpec())
    param_sh = sharding.param_shardings(model, config, mesh, example)
  # Loading (random init included) runs outside the rules context, like apar_jax.runtime.
  params = base_params if base_params is not None else _load_params(config, param_sh)
  params = sharding.shard_params(params, param_sh)
  with _mesh_context(mesh, config):
    token_ids = (tokenizer.fork_id, tokenizer.child_id)
    trainable, frozen, apply_model, spec = split_trainable(model, params, tc, token_ids,
                                                           jax.random.key(int(tc.seed)))
    if spec is not None:
      trainable = jax.device_put(trainable, sharding.replicated(mesh))
    state = jax.jit(lambda t: init_state(t, tx))(trainable)
    state_sh = jax.tree.map(lambda x: x.sharding, state)
    vocab = (jnp.asarray(word_token_mask(tokenizer, int(config.model.vocab_size)))
             if unlikelihood and candidates == 'words' else None)
    loss_sums = loss_sums_fn(apply_model, max_depth=int(tc.max_depth),
                             attention_impl=str(tc.attention_impl),
                             root_unlikelihood_weight=unlikelihood, unlikelihood_vocab=vocab)
    step_fn = jax.jit(make_train_step(loss_sums, tx, schedule), donate_argnums=(0,),
                      out_shardings=(state_sh, sharding.replicated(mesh)))
    ckpt = TrainCheckpoints(tc.checkpoint_dir, int(tc.save_every), int(tc.keep_checkpoints))
    start = ckpt.latest_step() or 0
    if start:
      state = ckpt.restore(start, state)
      print(f'[train] resumed from step {start} ({ckpt.directory})', file=sys.stderr)
    end = total if stop_after is None else min(total, int(stop_after))
    batch_sh = NamedSharding(mesh, PartitionSpec(None, ('data', 'fsdp')))
    state, done, tokens_per_s = _loop(
        tc, state, frozen, step_fn, ckpt, start, end,
        lambda step: _batch(rows, batch_rows(rows.num_rows, int(tc.batch_size), step, int(tc.seed)),
                            accum, micro, batch_sh), progress)
  exported = _export(config, state, spec) if done >= total else None
  return TrainResult(state, stats, start, done, exported, tokens_per_s)


def _loop(tc: ml_collections.ConfigDict, state: Any, frozen: Any, step_fn: Any,
          ckpt: TrainCheckpoints, start: int, end: int, make_batch: Callable[[int], Any],
          progress: bool) -> tuple[Any, int, float]:
  """Steps start .. end - 1 with logging and checkpoints; returns (state, steps done, tokens/s).

  Only process 0 logs (one metrics file and event stream per job); every process checkpoints."""
  main = distributed.is_main_process()
  if main:
    os.makedirs(tc.log_dir, exist_ok=True)
  writer = None
  if main:
    from tensorboardX import SummaryWriter  # imports torch when present: only when training
    # one event file per run; the suffix keeps runs started in the same second apart
    writer = SummaryWriter(tc.log_dir, filename_suffix=f'.{os.getpid()}.from{start}')
  tokens_done, timed_s, done = 0.0, 0.0, start
  bar = tqdm(range(start, end), initial=start, total=int(tc.total_steps), desc='train',
             disable=not (progress and main), file=sys.stderr, dynamic_ncols=True)
  for step in bar:
    t0 = time.perf_counter()
    state, metrics = step_fn(state, frozen, make_batch(step))
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    dt = time.perf_counter() - t0
    metrics['tokens_per_s'] = metrics['tokens'] / dt
    if step > start:  # the first step of a run includes compilation
      tokens_done, timed_s = tokens_done + metrics['tokens'], timed_s + dt
    done = step + 1
    if writer is not None and (done % int(tc.log_every) == 0 or done == end):
      _log_metrics(writer, tc.log_dir, done, metrics)
    bar.set_postfix(loss=f'{metrics["loss"]:.4f}', tok_s=f'{metrics["tokens_per_s"]:.0f}')
    ckpt.save(done, state, force=done == end)
  bar.close()
  if writer is not None:
    writer.close()
  ckpt.close()
  return state, done, tokens_done / timed_s if timed_s > 0 else float('nan')


def _export(config: ml_collections.ConfigDict, state: Any, spec: Any) -> str:
  """Writes the final adapter (LoRA) or params (full) to train.export_dir."""
  tc = config.train
  if not tc.export_dir:
    return ''
  if spec is not None:
    path = save_adapter(tc.export_dir, adapter_of(state['trainable'], spec))
  else:
    from apar_jax.weights import save_params
    distributed.remove_directory(tc.export_dir)  # once for the job: save_params deletes per process
    path = save_params(tc.export_dir, state['trainable'], model_cfg=config.model, overwrite=True)
  print(f'[train] wrote {path}', file=sys.stderr)
  return path
