"""`python -m apar_jax generate`: answer prompts and write one JSON record per prompt."""

import dataclasses
import json
import sys
import time
from typing import Any, Optional

import ml_collections

from apar_jax import cli_flags
from apar_jax.cli_errors import check_output
from apar_jax.commands.prompts import read_prompts
from apar_jax.generate import SamplingParams
from apar_jax.mode_weights import config_for_mode
from apar_jax.modes import MODES, Mode
from apar_jax.repeat_penalty import check_repeat_settings
from apar_jax.runtime import Runtime, load_runtime
from apar_jax.tokenization import IncrementalDecoder, encode_user_prompt


@dataclasses.dataclass(frozen=True)
class RepeatSettings:
  """`--repetition_penalty` / `--no_repeat_ngram` / `--penalize_symbols` (or the config's
  `generate` defaults)."""
  repetition_penalty: float = 1.0
  no_repeat_ngram: int = 0
  penalize_symbols: bool = True

  @property
  def active(self) -> bool:
    return self.repetition_penalty != 1.0 or self.no_repeat_ngram > 0


def _flag_or(flag: Any, default: Any) -> Any:
  """The flag's value when given on the command line, else `default` (from the config)."""
  return default if flag.value is None else flag.value


def repeat_settings_from_flags(config: ml_collections.ConfigDict, mode: str) -> RepeatSettings:
  """Checked before any weight is loaded: bad values and drafter modes are refused at once."""
  gen = config.generate
  settings = RepeatSettings(
      float(_flag_or(cli_flags.REPETITION_PENALTY, gen.get('repetition_penalty', 1.0))),
      int(_flag_or(cli_flags.NO_REPEAT_NGRAM, gen.get('no_repeat_ngram', 0))),
      bool(_flag_or(cli_flags.PENALIZE_SYMBOLS, gen.get('penalize_symbols', True))))
  try:
    check_repeat_settings(settings.repetition_penalty, settings.no_repeat_ngram)
  except ValueError as e:
    raise ValueError(f'--{e}') from None
  if settings.active and Mode.parse(mode).drafter is not None:
    raise ValueError(f'--repetition_penalty / --no_repeat_ngram work in --mode=ar or apar, not '
                     f'{mode} (a drafter is verified against the unpenalised model)')
  return settings




def sampling_from_flags(config: ml_collections.ConfigDict) -> SamplingParams:
  gen = config.generate
  params = SamplingParams(temperature=float(_flag_or(cli_flags.TEMPERATURE, gen.temperature)),
                          top_k=int(_flag_or(cli_flags.TOP_K, gen.top_k)),
                          top_p=float(_flag_or(cli_flags.TOP_P, gen.top_p)),
                          seed=int(_flag_or(cli_flags.SEED, config.seed)))
  if params.temperature < 0 or not 0 < params.top_p <= 1 or params.top_k < 0:
    raise ValueError('need --temperature >= 0, 0 < --top_p <= 1 and --top_k >= 0')
  return params


def check_mode(mode: str) -> None:
  """A one-line error naming the modes, for an unknown `--mode`."""
  if mode not in MODES:
    raise ValueError(f'unknown --mode={mode!r}; choose one of {", ".join(MODES)}')


def generate_on_engine(runtime: Runtime, mode: str, prompts: list[str], max_new: int,
                       sampling: SamplingParams, stream: bool,
                       repeats: RepeatSettings = RepeatSettings()) -> list[dict[str, Any]]:
  """Decodes every prompt on the engine (continuous batching); streams a single AR answer."""
  from apar_jax.engine.host.cli_api import generate_records
  cfg = runtime.config
  tok = runtime.tokenizer
  ids = [encode_user_prompt(tok, p, cfg.tokenizer, raw=cli_flags.RAW_PROMPT.value)
         for p in prompts]
  on_tokens = None
  if stream:  # APAR branches arrive interleaved: only AR streams in reading order
    decoder = IncrementalDecoder(tok)

    def on_tokens(index, branch_id, parent, fork_point, new_ids):
      del index, branch_id, parent, fork_point
      for t in new_ids:
        sys.stdout.write(decoder.push(t))
      sys.stdout.flush()
  records = generate_records(runtime, mode, prompts, ids, max_new_tokens=max_new,
                             temperature=sampling.temperature, top_k=sampling.top_k,
                             top_p=sampling.top_p, seed=sampling.seed,
                             repetition_penalty=repeats.repetition_penalty,
                             no_repeat_ngram=repeats.no_repeat_ngram,
                             penalize_symbols=repeats.penalize_symbols, on_tokens=on_tokens,
                             progress=not stream and len(prompts) > 1)
  if stream:
    sys.stdout.write('\n')
  for r in records:
    n, wall = r['num_generated_tokens'], r['wall_time_s']
    print(f'[generate] {mode}: {n} tokens in {r["decode_steps"]} steps, {wall:.2f}s '
          f'({n / wall if wall > 0 else float("nan"):.1f} tokens/s), forks {r["forks"]}, '
          f'peak KV pages {r["peak_kv_pages"]}', file=sys.stderr)
  return records


def run(config: ml_collections.ConfigDict) -> None:
  mode = cli_flags.MODE.value
  check_mode(mode)
  check_output(cli_flags.OUTPUT.value, cli_flags.OVERWRITE.value)
  prompts = read_prompts(cli_flags.PROMPT.value, cli_flags.PROMPTS_FILE.value)
  sampling = sampling_from_flags(config)
  repeats = repeat_settings_from_flags(config, mode)
  max_new = cli_flags.MAX_NEW_TOKENS.value
  max_new = config.generate.max_new_tokens if max_new is None else max_new
  if max_new < 1:
    raise ValueError(f'--max_new_tokens must be >= 1, got {max_new}')
  if cli_flags.ATTENTION_IMPL.value is not None:
    from pallas_kernels import IMPLS
    if cli_flags.ATTENTION_IMPL.value not in IMPLS:
      raise ValueError(f'unknown --attention_impl={cli_flags.ATTENTION_IMPL.value!r}; choose one of '
                       f'{", ".join(IMPLS)}')
    config.engine.attention_impl = cli_flags.ATTENTION_IMPL.value
  runtime = load_runtime(config_for_mode(config, mode))
  from apar_jax.distributed import is_main_process
  # Multi-process: every process decodes; only process 0 streams (and writes, see write_records).
  stream = cli_flags.STREAM.value and len(prompts) == 1 and mode == 'ar' and is_main_process()
  records = generate_on_engine(runtime, mode, prompts, max_new, sampling, stream, repeats)
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
