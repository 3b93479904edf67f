"""The training workers' shared set-up: the role's work dir, the small ShareGPT file and the tiny
train config (import it after `worker_init.start()`: it imports jax)."""

import os

import jax
import ml_collections

from worker_init import WorkerArgs

from training_fixtures import tiny_train_config, write_sharegpt


def train_config(args: WorkerArgs, **train_overrides) -> tuple[str, ml_collections.ConfigDict]:
  """(work dir, config): the tiny train config (batch 4, no warm-up, then `train_overrides`) in
  OUT_DIR/reference/ or, for the worker role, in OUT_DIR/job/ (shared by both processes) over one
  2x4 (data x tensor) mesh."""
  work = os.path.join(args.out_dir, 'reference' if args.role == 'reference' else 'job')
  os.makedirs(work, exist_ok=True)
  # Both workers write the same bytes; each reads its own copy (no race on a half-written file).
  data = write_sharegpt(os.path.join(work, f'data_{args.process_id}.jsonl'))
  config = tiny_train_config(work, data, batch_size=4, warmup_steps=0, **train_overrides)
  if args.role == 'worker':
    assert jax.process_count() == 2 and jax.device_count() == 8
    config.mesh.update(data=2, fsdp=1, tensor=4)
  return work, config
