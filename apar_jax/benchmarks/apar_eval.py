"""Does the APAR fine-tune fork, how many decode steps does it save, and what did it cost in quality?

    python -m apar_jax.benchmarks.apar_eval [--config=configs/apar_smollm2_135m.py] [--num_list=50]

On held-out generated requests (after the ones distilled for training; `heldout_answers.py`):
1. the base model answers them (the distillation's sampling settings, cached in `--out_dir`) until
   `--num_list` requests got a list answer and `--num_plain` plain requests got a finished plain one;
2. the APAR model (the config's adapter) answers the list requests in `--mode` (greedy): the share of
   requests that forked, and decode steps per generated token against AR's (one token per step);
3. mean NLL per token of the base model's held-out plain answers, under the base and the APAR params.
Prints a table with the issue's targets and writes `apar_eval.json` to `--out_dir`.
"""

import json
import os
import sys
import time

from absl import app, flags
from ml_collections import config_flags

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(REPO, 'configs', 'apar_smollm2_135m.py'), 'An APAR config (with adapter).')
NUM_LIST = flags.DEFINE_integer('num_list', 50, 'Held-out requests the base model answers with a list.')
NUM_PLAIN = flags.DEFINE_integer('num_plain', 20, 'Held-out plain answers for the loss comparison.')
MAX_CANDIDATES = flags.DEFINE_integer('max_candidates', 400, 'Held-out requests to draw from.')
MAX_NEW_TOKENS = flags.DEFINE_integer('max_new_tokens', 384, 'Per-branch budget of the APAR answers.')
MODE = flags.DEFINE_string('mode', 'apar', 'Engine mode of the APAR model (apar or apar_<drafter>).')
CONCURRENT = flags.DEFINE_integer('concurrent', 2, 'APAR requests decoded together.')
SLOTS = flags.DEFINE_integer('slots', 24, 'Engine slots (branches of all concurrent requests).')
OUT_DIR = flags.DEFINE_string('out_dir', os.path.join(REPO, 'runs', 'apar_eval'), 'Cache and report.')

def decode_apar(config, lists, mode: str, max_new_tokens: int) -> list[dict]:
  """The APAR model's greedy answers to the list requests (engine records)."""
  from apar_jax.engine.cli_api import generate_records
  from apar_jax.runtime import load_runtime
  config.engine.update(max_slots=SLOTS.value, max_requests=CONCURRENT.value)
  runtime = load_runtime(config)
  return generate_records(runtime, mode, [a.prompt for a in lists],
                          [list(a.prompt_ids) for a in lists], max_new_tokens=max_new_tokens,
                          progress=True)


def plain_losses(config, plain) -> tuple[float, float]:
  """(base NLL, APAR NLL) per token of the held-out plain answers."""
  from apar_jax.benchmarks.answer_nll import answer_nll
  from apar_jax.runtime import load_runtime
  from apar_jax.training.base_model import without_adapter
  prompts = [a.prompt_ids for a in plain]
  answers = [a.answer_ids for a in plain]
  out = []
  for cfg in (without_adapter(config), config):
    runtime = load_runtime(cfg)
    out.append(answer_nll(runtime.model, runtime.params, prompts, answers))
    del runtime
  return out[0], out[1]


def main(argv) -> None:
  del argv
  from apar_jax.benchmarks.apar_eval_report import report, summarise
  from apar_jax.benchmarks.heldout_answers import base_answers
  config = CONFIG.value
  if not config.weights.get('adapter', ''):
    raise app.UsageError('--config has no weights.adapter: this benchmark evaluates an APAR fine-tune')
  if not os.path.exists(config.weights.adapter):
    raise app.UsageError(f'adapter {config.weights.adapter} not found: train it first with '
                         '`python -m apar_jax train --config=...`')
  os.makedirs(OUT_DIR.value, exist_ok=True)
  t0 = time.perf_counter()
  lists, plain = base_answers(config, os.path.join(OUT_DIR.value, 'base_answers.jsonl'),
                              num_list=NUM_LIST.value, num_plain=NUM_PLAIN.value,
                              max_candidates=MAX_CANDIDATES.value)
  print(f'[apar_eval] {len(lists)} list and {len(plain)} plain held-out answers '
        f'({time.perf_counter() - t0:.0f} s)', file=sys.stderr)
  records = decode_apar(config, lists, MODE.value, MAX_NEW_TOKENS.value)
  base_nll, apar_nll = plain_losses(config, plain)
  summary = summarise(records, base_nll, apar_nll)
  summary.update(mode=MODE.value, max_new_tokens=MAX_NEW_TOKENS.value,
                 wall_time_s=time.perf_counter() - t0)
  with open(os.path.join(OUT_DIR.value, 'apar_eval.json'), 'w') as f:
    json.dump(dict(summary=summary, records=[
        {k: r[k] for k in ('text', 'forks', 'decode_steps', 'num_generated_tokens')}
        for r in records]), f, indent=1)
  print(report(summary))


if __name__ == '__main__':
  app.run(main)
