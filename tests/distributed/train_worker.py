"""One process of the two-process training test (a script, not collected by pytest).

    python train_worker.py REPO_ROOT OUT_DIR reference
    python train_worker.py REPO_ROOT OUT_DIR worker PORT PROCESS_ID

Both roles train a LoRA adapter for two steps with the trainer (`apar_jax.training.trainer.train`)
on the tiny model and the small ShareGPT file of tests/training, checkpoints, logs and the adapter
export included. `reference` trains straight through on one CPU device in OUT_DIR/reference/;
`worker` joins the two-process job and trains over one 2x4 (data x tensor) mesh, stopping after step
1 and resuming from that checkpoint; both processes share OUT_DIR/job/ (one set of checkpoints, logs
and adapter for the job). Each writes OUT_DIR/<role>_<process id>.npz (the trained LoRA weights) and
.json (steps run, export path, processes holding the weights).
"""

import json
import os

import worker_init  # noqa: E402

ARGS = worker_init.start()  # joins the job (worker role) before jax touches a backend

import jax  # noqa: E402
import numpy as np  # noqa: E402

from apar_jax.training.trainer import train  # noqa: E402
from train_setup import train_config  # noqa: E402


def main() -> None:
  _, config = train_config(ARGS, total_steps=2)
  runs = []
  if ARGS.role == 'worker':
    runs.append(train(config, stop_after=1, progress=False))  # saves step 1, then resumes from it
  runs.append(train(config, progress=False))
  result = runs[-1]
  leaves = jax.tree_util.tree_leaves_with_path(result.state['trainable'])
  arrays = {jax.tree_util.keystr(path): np.asarray(x) for path, x in leaves}
  name = os.path.join(ARGS.out_dir, f'{ARGS.role}_{ARGS.process_id}')
  np.savez(name + '.npz', **arrays)
  facts = dict(steps=[[r.start_step, r.end_step] for r in runs], exported=result.exported,
               trainable_processes=sorted({d.process_index for x in jax.tree.leaves(
                   result.state['trainable']) for d in x.sharding.device_set}))
  with open(name + '.json', 'w') as f:
    json.dump(facts, f)


if __name__ == '__main__':
  main()
