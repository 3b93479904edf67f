"""One process of the two-process full fine-tuning test (a script, not collected by pytest).

    python train_full_worker.py REPO_ROOT OUT_DIR reference
    python train_full_worker.py REPO_ROOT OUT_DIR worker PORT PROCESS_ID

Both roles run one full fine-tuning step of the trainer on the tiny model and the small ShareGPT file
of tests/training and export the params with `save_params`. `reference` trains on one CPU device in
OUT_DIR/reference/; `worker` joins the two-process job and trains over one 2x4 (data x tensor) mesh,
the params (and their Adam moments) split over tensor within each host; both processes share
OUT_DIR/job/. Each writes OUT_DIR/<role>_<process id>.json (steps run, local shard shapes).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import worker_init  # noqa: E402

ARGS = worker_init.start()  # joins the job (worker role) before jax touches a backend
sys.path.insert(0, os.path.join(ARGS.repo_root, 'tests', 'training'))

import jax  # noqa: E402

from apar_jax.training.trainer import train  # noqa: E402
from training_fixtures import tiny_train_config, write_sharegpt  # noqa: E402


def main() -> None:
  work = os.path.join(ARGS.out_dir, 'reference' if ARGS.role == 'reference' else 'job')
  os.makedirs(work, exist_ok=True)
  # Both workers write the same bytes; each reads its own copy (no race on a half-written file).
  data = write_sharegpt(os.path.join(work, f'data_{ARGS.process_id}.jsonl'))
  config = tiny_train_config(work, data, batch_size=4, total_steps=1, warmup_steps=0,
                             method='full', export_dir=os.path.join(work, 'export'))
  if ARGS.role == 'worker':
    assert jax.process_count() == 2 and jax.device_count() == 8
    config.mesh.update(data=2, fsdp=1, tensor=4)
  result = train(config, progress=False)
  mlp = result.state['trainable']['layers_0']['mlp']['up_proj']['kernel']
  facts = dict(steps=[result.start_step, result.end_step], exported=result.exported,
               mlp_local_shards=sorted({tuple(s.data.shape) for s in mlp.addressable_shards}))
  with open(os.path.join(ARGS.out_dir, f'{ARGS.role}_{ARGS.process_id}.json'), 'w') as f:
    json.dump(facts, f)


if __name__ == '__main__':
  main()
