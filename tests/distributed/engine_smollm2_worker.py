"""One process of the two-process engine test on SmolLM2-135M (a script, not collected by pytest).

    python engine_smollm2_worker.py REPO_ROOT OUT_DIR reference
    python engine_smollm2_worker.py REPO_ROOT OUT_DIR worker PORT PROCESS_ID

Both roles load configs/smollm2_135m.py with `load_runtime` and decode three chat prompts greedily in
AR mode through `cli_api.generate_records` (the path of `generate --mode=ar`). `reference` runs on one
CPU device; `worker` joins the two-process job, whose runtime loads the params straight into their
shardings over one 2x4 (data x tensor) mesh from `make_global_mesh`. Each writes
OUT_DIR/<role>_<process id>.json.
"""

import json
import os

import worker_init  # noqa: E402

ARGS = worker_init.start()  # joins the job (worker role) before jax touches a backend

import jax  # noqa: E402

from apar_jax.engine.host.cli_api import generate_records  # noqa: E402
from apar_jax.engine.host.engine import engine_section  # noqa: E402
from apar_jax.runtime import load_runtime  # noqa: E402
from apar_jax.tokenization import encode_chat  # noqa: E402
from conftest import load_config  # noqa: E402

PROMPTS = ['What is the capital of France?', 'Write a haiku about the sea.',
           'Name two primary colors.']
NEW = 20


def main() -> None:
  config = load_config('smollm2_135m')
  config.engine = engine_section(config)
  config.engine.update(num_pages=32, page_size=16, pages_per_slot=4, chunk_steps=8,
                       prefill_chunk=32)
  if ARGS.role == 'worker':
    assert jax.process_count() == 2 and jax.device_count() == 8
    config.mesh.update(data=2, fsdp=1, tensor=4)
  runtime = load_runtime(config)
  prompt_ids = [encode_chat(runtime.tokenizer, [{'role': 'user', 'content': p}], 'chatml')
                for p in PROMPTS]
  records = generate_records(runtime, 'ar', PROMPTS, prompt_ids, max_new_tokens=NEW)
  mlp = runtime.params['layers_0']['mlp']['up_proj']['kernel']
  out = dict(records=[{k: r[k] for k in ('prompt', 'text', 'token_ids', 'decode_steps')}
                      for r in records],
             mesh_devices=runtime.mesh.size,
             mlp_processes=sorted({d.process_index for d in mlp.sharding.device_set}),
             mlp_local_shards=sorted({tuple(s.data.shape) for s in mlp.addressable_shards}))
  with open(os.path.join(ARGS.out_dir, f'{ARGS.role}_{ARGS.process_id}.json'), 'w') as f:
    json.dump(out, f)


if __name__ == '__main__':
  main()
