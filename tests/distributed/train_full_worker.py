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

import worker_init  # noqa: E402

ARGS = worker_init.start()  # joins the job (worker role) before jax touches a backend

from apar_jax.training.trainer import train  # noqa: E402
from train_setup import train_config  # noqa: E402


def main() -> None:
  work, config = train_config(ARGS, total_steps=1, method='full')
  config.train.export_dir = os.path.join(work, 'export')
  result = train(config, progress=False)
  mlp = result.state['trainable']['layers_0']['mlp']['up_proj']['kernel']
  facts = dict(steps=[result.start_step, result.end_step], exported=result.exported,
               mlp_local_shards=sorted({tuple(s.data.shape) for s in mlp.addressable_shards}))
  with open(os.path.join(ARGS.out_dir, f'{ARGS.role}_{ARGS.process_id}.json'), 'w') as f:
    json.dump(facts, f)


if __name__ == '__main__':
  main()
