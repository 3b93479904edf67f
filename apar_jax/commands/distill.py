"""`python -m apar_jax distill`: the base model answers the shipped requests -> ShareGPT JSONL.

    python -m apar_jax distill --config=configs/apar_smollm2_135m.py [--config.distill.num_prompts=N]

Requests come from `apar_data.prompt_generator` (deterministic). Answers are decoded in batches and
appended to `config.distill.output` as they finish, one ShareGPT record per line with the extra fields
`kind`, `finished` (ended with a stop token, not the budget) and `num_tokens`. Re-running skips the
ids already in the file, so an interrupted run resumes where it stopped. Decoding uses the paged
engine (AR mode) when it is available, else the dense-cache generator: `make_answerer` is the one
place that chooses.
"""

import json
import os
import sys
import time
from typing import Callable, Sequence

import ml_collections
from tqdm import tqdm

from apar_jax.apar_data.prompt_generator import Prompt, generate_prompts
from apar_jax.apar_data.sharegpt import sharegpt_record
from apar_jax.runtime import load_tokenizer_from_config
from apar_jax.tokenization import encode_chat

# (prompt token ids) -> (answer token ids, the last one a stop id when the answer finished)
Answerer = Callable[[Sequence[Sequence[int]]], list[list[int]]]
BACKENDS = ('auto', 'engine', 'dense')


def distill_section(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  if 'distill' in config:
    return config.distill
  from apar_jax.training.defaults import distill_defaults
  return distill_defaults()


def _engine_available() -> bool:
  try:
    from apar_jax.engine.engine import Engine  # noqa: F401
  except ImportError:
    return False
  return True


def make_answerer(config: ml_collections.ConfigDict, dc: ml_collections.ConfigDict,
                  max_prompt_len: int = 0) -> tuple[Answerer, object, str]:
  """(answerer, tokenizer, backend name): the engine in AR mode if present, else DenseGenerator.

  With `max_prompt_len`, the engine's page tables are sized for prompts that long plus the answer
  budget (`cli_api.fit_engine_config`): the attention reads every table entry, so a table sized for
  the default view costs several times the time per step.
  """
  backend = dc.backend
  if backend not in BACKENDS:
    raise ValueError(f'config.distill.backend must be one of {BACKENDS}, got {backend!r}')
  if backend == 'auto':
    backend = 'engine' if _engine_available() else 'dense'
  from apar_jax.runtime import load_runtime
  from apar_jax.training.base_model import without_adapter
  runtime = load_runtime(without_adapter(config))  # the base model answers
  tok = runtime.tokenizer
  if backend == 'engine':
    from apar_jax.engine.engine import Engine
    from apar_jax.engine.cli_api import fit_engine_config
    from apar_jax.engine.requests import Request
    if max_prompt_len:
      config = fit_engine_config(config, [max_prompt_len] * int(dc.batch_size),
                                 int(dc.max_new_tokens), mode='ar')
    engine = Engine(config, mode='ar', params=runtime.params, tokenizer=tok, mesh=runtime.mesh)

    def answer(prompts):
      requests = [Request(token_ids=list(p), max_new_tokens=int(dc.max_new_tokens),
                          temperature=float(dc.temperature), top_k=int(dc.top_k),
                          top_p=float(dc.top_p), seed=int(dc.seed)) for p in prompts]
      return [list(r.token_ids) for r in engine.generate(requests)]
    return answer, tok, backend

  from apar_jax.generate import DenseGenerator, SamplingParams
  generator = DenseGenerator(runtime.model, runtime.params, stop_ids=tok.stop_ids,
                             banned_ids=(tok.fork_id, tok.child_id), chunk_steps=32)
  sampling = SamplingParams(float(dc.temperature), int(dc.top_k), float(dc.top_p), int(dc.seed))

  def answer(prompts):
    return generator.generate([list(p) for p in prompts], int(dc.max_new_tokens), sampling)['tokens']
  return answer, tok, backend


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
  dc = distill_section(config)
  if int(dc.batch_size) < 1 or int(dc.max_new_tokens) < 1:
    raise ValueError('config.distill.batch_size and max_new_tokens must be >= 1')
  prompts = generate_prompts(int(dc.num_prompts), int(dc.prompt_seed))
  out_path = dc.output
  os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
  _truncate_partial_line(out_path)
  seen = done_ids(out_path)
  todo = [p for p in prompts if p.id not in seen]
  print(f'[distill] {len(prompts)} prompts, {len(prompts) - len(todo)} already in {out_path}, '
        f'{len(todo)} to answer', file=sys.stderr)
  if not todo:
    return
  tok = load_tokenizer_from_config(config)
  encode = lambda p: encode_chat(tok, [{'role': 'user', 'content': p.text}],  # noqa: E731
                                 config.tokenizer.chat_template,
                                 system_prompt=config.tokenizer.system_prompt)
  max_prompt_len = max(len(encode(p)) for p in todo)
  answer, tok, backend = make_answerer(config, dc, max_prompt_len)
  print(f'[distill] decoding with the {backend} backend, batch {dc.batch_size}, up to '
        f'{dc.max_new_tokens} new tokens', file=sys.stderr)
  stops = set(tok.stop_ids)
  bar = tqdm(total=len(todo), desc='distill', unit='answer', file=sys.stderr, dynamic_ncols=True)
  tokens_out, t0 = 0, time.perf_counter()
  with open(out_path, 'a', encoding='utf-8') as f:
    for start in range(0, len(todo), int(dc.batch_size)):
      batch: list[Prompt] = todo[start:start + int(dc.batch_size)]
      ids = [encode(p) for p in batch]
      for p, out in zip(batch, answer(ids)):
        finished = bool(out) and out[-1] in stops
        text = tok.decode(out[:-1] if finished else out)
        f.write(json.dumps(sharegpt_record(p.id, p.text, text, kind=p.kind, finished=finished,
                                           num_tokens=len(out)), ensure_ascii=False) + '\n')
        tokens_out += len(out)
      f.flush()
      bar.update(len(batch))
      bar.set_postfix(tok_s=f'{tokens_out / (time.perf_counter() - t0):.0f}')
  bar.close()
  print(f'[distill] wrote {len(todo)} answers to {out_path}', file=sys.stderr)
