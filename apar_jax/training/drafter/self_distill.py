"""Self-distilled drafter data: the base model's own greedy answers, as ShareGPT JSONL.

Each record is a one-exchange ShareGPT conversation plus the exact token ids (`prompt_ids`,
`answer_ids`, the stop token included when generated), so training sees precisely what the base model
produced, with no re-tokenisation drift. Appends to the file and skips prompts already present, so an
interrupted run resumes where it stopped.
"""

import json
import os
import sys
import time
from typing import Any, Sequence

from apar_jax.apar_data.sharegpt import sharegpt_record
from apar_jax.generate import DenseGenerator, SamplingParams
from apar_jax.tokenization import Tokenizer, encode_user_prompt


def _done_prompts(path: str) -> set[str]:
  if not os.path.exists(path):
    return set()
  done = set()
  with open(path, encoding='utf-8') as f:
    for line in f:
      if line.strip():
        done.add(json.loads(line)['conversations'][0]['value'])
  return done


def distill(model: Any, params: Any, tokenizer: Tokenizer, prompts: Sequence[str], out_path: str, *,
            tokenizer_config: Any, max_new_tokens: int, batch_size: int = 8) -> int:
  """Greedy answers of the base model to `prompts` (rendered with `tokenizer_config`, the config's
  `tokenizer` section), appended to `out_path`; returns records written."""
  if batch_size < 1 or max_new_tokens < 1:
    raise ValueError(f'need batch_size >= 1 and max_new_tokens >= 1, got {batch_size}, '
                     f'{max_new_tokens}')
  todo = [p for p in prompts if p not in _done_prompts(out_path)]
  banned = tuple(i for i in (tokenizer.fork_id, tokenizer.child_id) if i is not None)
  generator = DenseGenerator(model, params, stop_ids=tokenizer.stop_ids, banned_ids=banned,
                             chunk_steps=32)
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  written = 0
  t0 = time.perf_counter()
  for start in range(0, len(todo), batch_size):
    batch = list(todo[start:start + batch_size])
    ids = [encode_user_prompt(tokenizer, p, tokenizer_config) for p in batch]
    pad = batch_size - len(batch)  # keep one compiled batch shape
    result = generator.generate(ids + [ids[-1]] * pad, max_new_tokens, SamplingParams())
    n_before = len(_done_prompts(out_path))
    with open(out_path, 'a', encoding='utf-8') as f:
      for i, prompt in enumerate(batch):
        answer = result['tokens'][i]
        record = sharegpt_record(f'distill-{n_before + i}', prompt,
                                 tokenizer.decode(answer), prompt_ids=ids[i], answer_ids=answer)
        f.write(json.dumps(record, ensure_ascii=False) + '\n')
    written += len(batch)
    rate = written / (time.perf_counter() - t0)
    print(f'[self_distill] {written}/{len(todo)} answers ({rate:.2f}/s)', file=sys.stderr, flush=True)
  return written
