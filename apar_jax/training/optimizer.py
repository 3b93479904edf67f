"""AdamW with linear warmup and cosine decay, after global-norm gradient clipping."""

from typing import Any

import jax
import ml_collections
import optax


def learning_rate_schedule(train_cfg: ml_collections.ConfigDict) -> optax.Schedule:
  """0 -> learning_rate over warmup_steps, then cosine to learning_rate * end_lr_fraction."""
  total = int(train_cfg.total_steps)
  warmup = int(train_cfg.warmup_steps)
  if total < 1 or not 0 <= warmup < total:
    raise ValueError(f'need total_steps >= 1 and 0 <= warmup_steps < total_steps, got '
                     f'{total} and {warmup}')
  peak = float(train_cfg.learning_rate)
  return optax.warmup_cosine_decay_schedule(
      init_value=0.0, peak_value=peak, warmup_steps=warmup, decay_steps=total,
      end_value=peak * float(train_cfg.end_lr_fraction))


def _decay_mask(trainable: Any) -> Any:
  """Weight decay on matrices only (LoRA factors, kernels); not on norms, biases or token rows."""
  def keep(path, x):
    names = {getattr(k, 'key', None) for k in path}
    return x.ndim >= 2 and not names & {'embed_rows', 'head_cols', 'embed', 'embedding'}
  return jax.tree_util.tree_map_with_path(keep, trainable)


TOKEN_ROW_KEYS = frozenset({'embed_rows', 'head_cols'})


def _token_rows_mask(trainable: Any) -> Any:
  """True on the new tokens' embedding rows / LM-head columns that a LoRA run trains."""
  def is_row(path, x):
    del x
    return bool({getattr(k, 'key', None) for k in path} & TOKEN_ROW_KEYS)
  return jax.tree_util.tree_map_with_path(is_row, trainable)


def make_optimizer(train_cfg: ml_collections.ConfigDict) -> optax.GradientTransformation:
  """Clip, AdamW; the new tokens' rows step `token_rows_lr_scale` times further (default 1).

  New `[Fork]`/`[Child]` rows start at the mean embedding and must move far; at the LoRA learning
  rate they barely do in a short run, so recipes may give them a larger one.
  """
  parts = [optax.clip_by_global_norm(float(train_cfg.grad_clip)),
           optax.adamw(learning_rate_schedule(train_cfg), b1=0.9, b2=0.999, eps=1e-8,
                       weight_decay=float(train_cfg.weight_decay), mask=_decay_mask)]
  scale = float(train_cfg.get('token_rows_lr_scale', 1.0))
  if scale != 1.0:
    parts.append(optax.masked(optax.scale(scale), _token_rows_mask))
  return optax.chain(*parts)
