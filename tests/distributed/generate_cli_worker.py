"""One process of the two-process `generate` CLI test (a script, not collected by pytest).

    python generate_cli_worker.py REPO_ROOT OUT_DIR reference
    python generate_cli_worker.py REPO_ROOT OUT_DIR worker PORT PROCESS_ID

Runs `python -m apar_jax generate` (APAR mode, tiny config, OUT_DIR/prompts.txt) in this process. The
worker role joins the job the way a user's launch does, through the APAR_* environment variables the
CLI reads, and decodes over one 2x4 (data x tensor) mesh: one engine data shard per process. Records
go to OUT_DIR/<role>.jsonl (process 0 alone writes them).
"""

import os
import runpy
import sys


def main() -> None:
  repo_root, out_dir, role = sys.argv[1:4]
  args = ['apar_jax', 'generate', '--config=configs/tiny.py', '--mode=apar', '--max_new_tokens=10',
          f'--prompts_file={os.path.join(out_dir, "prompts.txt")}',
          f'--output={os.path.join(out_dir, role + ".jsonl")}']
  if role == 'worker':
    port, process_id = sys.argv[4:6]
    os.environ.update(APAR_COORDINATOR_ADDRESS=f'127.0.0.1:{port}', APAR_NUM_PROCESSES='2',
                      APAR_PROCESS_ID=process_id)
    args += ['--config.mesh.data=2', '--config.mesh.fsdp=1', '--config.mesh.tensor=4']
  os.chdir(repo_root)
  sys.argv = args
  runpy.run_module('apar_jax', run_name='__main__')


if __name__ == '__main__':
  main()
