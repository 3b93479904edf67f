"""What the two-process training tests compare a job to its one-process reference with: the run's
per-step Adam moments and weights read back from its checkpoints, and the accumulation depths of the
tiny model's loss and gradients (`apar_jax.testing`). Import after jax is set up."""

import json
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from apar_jax.testing.accumulation_depth import backward_terms, forward_terms
from apar_jax.testing.adam_conditioning import AdamStep
from apar_jax.testing.rounding import order_tolerance, slice_scale

from conftest import load_config

SEQ_LEN, BATCH = 160, 4  # tests/training/training_fixtures.py, tests/distributed/train_setup.py


def train_depths(targets: int, trainable: int, lora_rank: int = 0) -> dict[str, int]:
  """Accumulation depths of the tiny model's mean NLL over `targets`, of a weight's gradient and of
  the global gradient norm over `trainable` weights (a LoRA side path adds its rank both ways)."""
  model = load_config('tiny').model
  loss = forward_terms(model, SEQ_LEN) + model.vocab_size + targets
  grad = backward_terms(model, SEQ_LEN, loss_terms=model.vocab_size + targets,
                        grad_tokens=BATCH * SEQ_LEN) + 4 * lora_rank
  return dict(loss=loss, grad=grad, grad_norm=grad + trainable)


def gradient_error(name: str, terms: int):
  """g -> the rounding allowed between two orders of the gradient of weight `name`.

  Token tables are built from disjoint terms per token: an embedding row (or LoRA `embed_rows` row)
  sums only the positions of its token, an LM-head column (or `head_cols` column) only that token's
  logit gradients; each is bounded at its own scale (an unused token's row is exactly zero in both).
  Every other weight mixes all positions and is bounded at its array's scale.
  """
  axis = 1 if 'embed' in name else 0 if ('lm_head' in name or 'head_cols' in name) else None
  return lambda g: order_tolerance(g, terms, np.float32,
                                   scale=None if axis is None else slice_scale(g, axis))


def adam_history(work_dir: str, steps: int) -> dict[str, list[AdamStep]]:
  """{weight name (jax keystr of the trainable tree): [AdamStep of step 1 .. steps]}.

  Needs checkpoints of every step (save_every=1, keep_checkpoints >= steps) in work_dir/ckpt and the
  learning rates in work_dir/logs/metrics.jsonl.
  """
  rates = {r['step']: r['learning_rate']
           for r in map(json.loads, open(os.path.join(work_dir, 'logs', 'metrics.jsonl')))}
  manager = ocp.CheckpointManager(os.path.join(work_dir, 'ckpt'))
  saved = sorted(manager.all_steps())
  if saved[-steps:] != list(range(1, steps + 1)):
    raise AssertionError(f'need the checkpoints of steps 1..{steps} in {work_dir}, found {saved}')
  history: dict[str, list[AdamStep]] = {}
  for step in range(1, steps + 1):
    moments = _adam_moments(manager.restore(step, args=ocp.args.StandardRestore())['opt_state'])
    if moments is None:
      raise AssertionError(f'no Adam moments (mu, nu) in the optimizer state of step {step}')
    mu, nu = (_flat(moments[k]) for k in ('mu', 'nu'))
    for name in mu:
      history.setdefault(name, []).append(AdamStep(rates[step], mu[name], nu[name]))
  manager.close()
  return history


def checkpoint_weights(work_dir: str, step: int) -> dict[str, np.ndarray]:
  """{weight name: value} of the trainable weights saved at `step` in work_dir/ckpt."""
  manager = ocp.CheckpointManager(os.path.join(work_dir, 'ckpt'))
  weights = _flat(manager.restore(step, args=ocp.args.StandardRestore())['trainable'])
  manager.close()
  return weights


def _adam_moments(opt_state) -> dict | None:
  """The {'count', 'mu', 'nu'} node of the optimizer chain's state."""
  if isinstance(opt_state, dict) and {'mu', 'nu'} <= set(opt_state):
    return opt_state
  children = opt_state.values() if isinstance(opt_state, dict) else (
      opt_state if isinstance(opt_state, (list, tuple)) else ())
  found = [m for child in children if (m := _adam_moments(child)) is not None]
  return found[0] if found else None


def _flat(tree) -> dict[str, np.ndarray]:
  return {jax.tree_util.keystr(path): np.asarray(x)
          for path, x in jax.tree_util.tree_leaves_with_path(tree)}
