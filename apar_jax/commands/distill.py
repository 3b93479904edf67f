"""`python -m apar_jax distill`: the base model answers the shipped requests -> ShareGPT JSONL.

    python -m apar_jax distill --config=configs/apar_smollm2_135m.py [--config.distill.num_prompts=N]

Requests come from `apar_data.prompt_generator` (deterministic). Answers are decoded in batches and
appended to `config.distill.output` as they finish, one ShareGPT record per line with the extra fields
`kind`, `finished` (ended with a stop token, not the budget) and `num_tokens`. Re-running skips the
ids already in the file, so an interrupted run resumes where it stopped. Decoding: `base_answers.py`
(the paged engine in AR mode, else the dense-cache generator). In a multi-process job every process
decodes and process 0 alone reads and writes the file (the others take its list of what is left).
"""

import contextlib
import json
import os
import sys

import ml_collections
import numpy as np

from apar_jax import distributed
from apar_jax.apar_data.prompt_generator import generate_prompts
from apar_jax.apar_data.sharegpt import sharegpt_record
from apar_jax.commands.base_answers import answer_batches, base_runtime, check_backend


def distill_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  if 'distill' in config:
    return config.distill
  from apar_jax.training.defaults import distill_defaults
  return distill_defaults()


def done_ids(path: str) -> set[str]:
  """Ids already answered in `path` (a partial last line from a crash is ignored)."""
  if not os.path.exists(path):
    return set()
  ids = set()
  with open(path, encoding='utf-8') as f:
    for line in f:
      try:
        ids.add(json.loads(line)['id'])
      except (json.JSONDecodeError, KeyError, TypeError):
        continue
  return ids


def _truncate_partial_line(path: str) -> None:
  """Drops an unterminated last line (a crash mid-write) so appends stay valid JSONL."""
  if not os.path.exists(path) or os.path.getsize(path) == 0:
    return
  with open(path, 'rb+') as f:
    data = f.read()
    if not data.endswith(b'\n'):
      f.truncate(data.rfind(b'\n') + 1)


def run(config: ml_collections.ConfigDict) -> None:
  """Answers the requests not yet in `config.distill.output` and appends them (process 0 writes;
  every process of a multi-process job decodes, on the requests process 0's file lacks)."""
  dc = distill_section(config)
  if int(dc.batch_size) < 1 or int(dc.max_new_tokens) < 1:
    raise ValueError('config.distill.batch_size and max_new_tokens must be >= 1')
  check_backend(dc)
  prompts = generate_prompts(int(dc.num_prompts), int(dc.prompt_seed))
  out_path = dc.output
  main = distributed.is_main_process()
  log = (lambda msg: print(msg, file=sys.stderr)) if main else (lambda msg: None)  # noqa: E731
  seen: set[str] = set()
  if main:
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    _truncate_partial_line(out_path)
    seen = done_ids(out_path)
  wanted = distributed.agree_with_main(np.array([p.id not in seen for p in prompts], bool))
  todo = [p for p, want in zip(prompts, wanted) if want]
  log(f'[distill] {len(prompts)} prompts, {len(prompts) - len(todo)} already in {out_path}, '
      f'{len(todo)} to answer')
  if not todo:
    return
  out = open(out_path, 'a', encoding='utf-8') if main else contextlib.nullcontext()
  with out as f:
    for batch in answer_batches(base_runtime(config), config, dc, todo, desc='distill'):
      if f is None:
        continue
      for item in batch:
        f.write(json.dumps(sharegpt_record(
            item.prompt.id, item.prompt.text, item.text, kind=item.prompt.kind,
            finished=item.finished, num_tokens=len(item.answer_ids)), ensure_ascii=False) + '\n')
      f.flush()
  log(f'[distill] wrote {len(todo)} answers to {out_path}')
