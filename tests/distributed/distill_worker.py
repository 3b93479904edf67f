"""One process of the two-process distillation test (a script, not collected by pytest).

    python distill_worker.py REPO_ROOT OUT_DIR reference
    python distill_worker.py REPO_ROOT OUT_DIR worker PORT PROCESS_ID

Both roles distil greedy answers of the tiny model (configs/tiny.py) on the engine backend.
`reference` answers 6 requests on one CPU device into OUT_DIR/reference.jsonl; the two `worker`
processes share OUT_DIR/job.jsonl over one 2x4 (data x tensor) mesh and answer 4 requests, then
resume to 6 (only the 2 missing ones are decoded). Each writes OUT_DIR/<role>_<process id>.json with
what it saw.
"""

import importlib.util
import json
import os

import worker_init  # noqa: E402

ARGS = worker_init.start()  # joins the job (worker role) before jax touches a backend

import jax  # noqa: E402

from apar_jax.commands import distill  # noqa: E402
from apar_jax.defaults import distill_defaults  # noqa: E402


def tiny_config(out_path: str, num_prompts: int):
  spec = importlib.util.spec_from_file_location(
      'tiny', os.path.join(ARGS.repo_root, 'configs', 'tiny.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  config.distill = distill_defaults()
  config.distill.update(num_prompts=num_prompts, output=out_path, batch_size=4, max_new_tokens=6,
                        backend='engine', temperature=0.0, max_attempts=1)
  return config


def main() -> None:
  if ARGS.role == 'reference':
    out_path = os.path.join(ARGS.out_dir, 'reference.jsonl')
    distill.run(tiny_config(out_path, 6))
  else:
    assert jax.process_count() == 2 and jax.device_count() == 8
    out_path = os.path.join(ARGS.out_dir, 'job.jsonl')
    for count in (4, 6):  # the second run resumes: process 0's file decides what is left
      config = tiny_config(out_path, count)
      config.mesh.update(data=2, fsdp=1, tensor=4)
      distill.run(config)
  with open(os.path.join(ARGS.out_dir, f'{ARGS.role}_{ARGS.process_id}.json'), 'w') as f:
    json.dump(dict(process=jax.process_index(), processes=jax.process_count()), f)


if __name__ == '__main__':
  main()
