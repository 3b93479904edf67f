"""`python -m apar_jax generate`: answer prompts and write one JSON record per prompt."""

import json
import sys
import time
from typing import Any, Optional

import ml_collections

from apar_jax import cli_flags
from apar_jax.commands.prompts import prompt_ids, read_prompts
from apar_jax.generate import DenseGenerator, SamplingParams
from apar_jax.runtime import Runtime, load_runtime
from apar_jax.tokenization import IncrementalDecoder

AVAILABLE_MODES = ('ar',)
PLANNED_MODES = ('apar', 'medusa', 'hidden_transfer', 'lookup', 'apar_medusa', 'apar_hidden_transfer',
                 'apar_lookup')


def sampling_from_flags(config: ml_collections.ConfigDict) -> SamplingParams:
  gen = config.generate
  pick = lambda flag, default: default if flag.value is None else flag.value  # noqa: E731
  params = SamplingParams(temperature=float(pick(cli_flags.TEMPERATURE, gen.temperature)),
                          top_k=int(pick(cli_flags.TOP_K, gen.top_k)),
                          top_p=float(pick(cli_flags.TOP_P, gen.top_p)),
                          seed=int(pick(cli_flags.SEED, config.seed)))
  if params.temperature < 0 or not 0 < params.top_p <= 1 or params.top_k < 0:
    raise ValueError('need --temperature >= 0, 0 < --top_p <= 1 and --top_k >= 0')
  return params


def check_mode(mode: str) -> None:
  if mode in AVAILABLE_MODES:
    return
  if mode in PLANNED_MODES:
    raise ValueError(f'--mode={mode} is not available in this build; available: '
                     f'{", ".join(AVAILABLE_MODES)}')
  raise ValueError(f'unknown --mode={mode!r}; choose one of {", ".join(AVAILABLE_MODES)}')


def empty_record(prompt: str, mode: str) -> dict[str, Any]:
  """The JSONL record with every field of the CLI contract; fields a mode does not fill stay None."""
  return {'prompt': prompt, 'mode': mode, 'text': None, 'token_ids': None,
          'num_generated_tokens': None, 'decode_steps': None, 'wall_time_s': None, 'forks': None,
          'max_live_branches': None, 'peak_kv_pages': None, 'mean_accepted_tokens': None,
          'attended_kv_tokens': None}


def generate_ar(runtime: Runtime, prompts: list[str], max_new: int, sampling: SamplingParams,
                stream: bool) -> list[dict[str, Any]]:
  """Decodes each prompt with the dense-cache loop (batch 1, streaming when asked)."""
  cfg = runtime.config
  tok = runtime.tokenizer
  generator = DenseGenerator(runtime.model, runtime.params, stop_ids=tok.stop_ids,
                             banned_ids=(tok.fork_id, tok.child_id),
                             chunk_steps=4 if stream else 32)
  records = []
  for prompt in prompts:
    ids = prompt_ids(tok, prompt, cfg.tokenizer.chat_template, cfg.tokenizer.system_prompt,
                     cli_flags.RAW_PROMPT.value)
    decoder = IncrementalDecoder(tok)
    on_tokens = None
    if stream:
      def on_tokens(_, new_ids):
        for t in new_ids:
          sys.stdout.write(decoder.push(t))
        sys.stdout.flush()
    t0 = time.perf_counter()
    result = generator.generate([ids], max_new, sampling, on_tokens)
    wall = time.perf_counter() - t0
    if stream:
      sys.stdout.write('\n')
    out_ids = result['tokens'][0]
    n = len(out_ids)
    record = empty_record(prompt, 'ar')
    record.update(text=tok.decode(out_ids), token_ids=out_ids, num_generated_tokens=n,
                  decode_steps=result['decode_steps'], wall_time_s=wall, forks=0,
                  max_live_branches=1, mean_accepted_tokens=1.0)
    decode_tps = (n - 1) / result['decode_s'] if n > 1 and result['decode_s'] > 0 else float('nan')
    print(f'[generate] {n} tokens, prefill {result["prefill_s"]:.2f}s (incl. compile), decode '
          f'{decode_tps:.1f} tokens/s', file=sys.stderr)
    records.append(record)
  return records


def run(config: ml_collections.ConfigDict) -> None:
  mode = cli_flags.MODE.value
  check_mode(mode)
  prompts = read_prompts(cli_flags.PROMPT.value, cli_flags.PROMPTS_FILE.value)
  sampling = sampling_from_flags(config)
  max_new = cli_flags.MAX_NEW_TOKENS.value
  max_new = config.generate.max_new_tokens if max_new is None else max_new
  if max_new < 1:
    raise ValueError(f'--max_new_tokens must be >= 1, got {max_new}')
  runtime = load_runtime(config)
  stream = cli_flags.STREAM.value and len(prompts) == 1
  records = generate_ar(runtime, prompts, max_new, sampling, stream)
  write_records(records, cli_flags.OUTPUT.value, echo=not stream)


def write_records(records: list[dict[str, Any]], output: Optional[str], echo: bool) -> None:
  """Writes JSONL to `output`; without a file, prints each answer's text to stdout (if not streamed).

  In a multi-process run only process 0 writes (every process holds the same results).
  """
  from apar_jax.distributed import is_main_process
  if not is_main_process():
    return
  if output:
    with open(output, 'w', encoding='utf-8') as f:
      for r in records:
        f.write(json.dumps(r, ensure_ascii=False) + '\n')
    print(f'[generate] wrote {len(records)} records to {output}', file=sys.stderr)
  elif echo:
    for r in records:
      print(r['text'])
