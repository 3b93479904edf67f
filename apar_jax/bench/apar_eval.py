"""Does the APAR fine-tune fork where it should, how many decode steps does it save, and does it
answer as well as the base model?

    python -m apar_jax.bench.apar_eval [--config=configs/apar_smollm2_135m.py]
        [--prompts_file=my_requests.jsonl] [--num_list=50 --num_plain=20]

Requests: `--prompts_file` (`eval_requests.read_prompts_file`: one per line, or JSONL with `prompt`
and `kind` 'list' | 'plain'), else the first `--num_list` list and `--num_plain` plain requests of the
prompt generator's held-out split (topics and templates the distillation never reads). Greedy:
1. the APAR model (the config's adapter) answers every request in `--mode` (cached in `--out_dir`
   by adapter files, mode, request and budget: an interrupted run keeps what it decoded);
2. the base model (no adapter) answers the same requests in AR mode (cached in `--out_dir`: a re-run
   or another adapter's evaluation decodes only what is missing);
3. per answer: the quality signals of `apar_eval_report` for both models; the base model's NLL per
   token of each list answer of either model (fluency without a judge); the NLL of the base model's
   finished plain answers under the base and the APAR params.
Prints the side-by-side table with the targets, writes `apar_eval.json` (summary and every answer)
and `apar_eval.png` to `--out_dir`.
"""

import dataclasses
import hashlib
import json
import os
import sys
import time

import ml_collections
from absl import app, flags
from ml_collections import config_flags

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = config_flags.DEFINE_config_file(
    'config', os.path.join(REPO, 'configs', 'apar_smollm2_135m.py'), 'An APAR config (with adapter).')
PROMPTS_FILE = flags.DEFINE_string('prompts_file', '', 'Your own requests (.txt or .jsonl); default: '
                                   'the generator\'s held-out split.')
NUM_LIST = flags.DEFINE_integer('num_list', 50, 'Held-out list requests (without --prompts_file).')
NUM_PLAIN = flags.DEFINE_integer('num_plain', 20, 'Held-out plain requests (without --prompts_file).')
MAX_NEW_TOKENS = flags.DEFINE_integer('max_new_tokens', 384, 'Per-branch token budget (both models).')
MODE = flags.DEFINE_string('mode', 'apar', 'Engine mode of the APAR model (apar or apar_<drafter>).')
CONCURRENT = flags.DEFINE_integer('concurrent', 2, 'APAR requests decoded together.')
SLOTS = flags.DEFINE_integer('slots', 24, 'Engine slots (branches of all concurrent APAR requests).')
BASE_BATCH = flags.DEFINE_integer('base_batch', 8, 'Base-model AR requests decoded together.')
OUT_DIR = flags.DEFINE_string('out_dir', os.path.join(REPO, 'runs', 'apar_eval'), 'Cache and report.')


def _engine_sized(config, slots: int, requests: int):
  config = ml_collections.ConfigDict(config.to_dict())
  config.engine.update(max_slots=slots, max_requests=requests)
  return config


def base_cache_key(config, request, max_new_tokens: int) -> str:
  """Which base answer a cached line holds: the weights (adapter aside), the request, the budget."""
  from apar_jax.training.base_model import without_adapter
  weights = without_adapter(config).weights.to_dict()
  blob = json.dumps([weights, config.tokenizer.to_dict(), request.text, max_new_tokens],
                    sort_keys=True, default=str)
  return hashlib.sha1(blob.encode()).hexdigest()


def apar_cache_key(config, mode: str, request, max_new_tokens: int) -> str:
  """Which APAR answer a cached line holds: the weights, the adapter's files (name, size, mtime),
  the mode, the request, the budget."""
  adapter = str(config.weights.adapter)
  files = sorted((os.path.relpath(os.path.join(d, f), adapter),
                  os.path.getsize(os.path.join(d, f)), os.path.getmtime(os.path.join(d, f)))
                 for d, _, names in os.walk(adapter) for f in names)
  blob = json.dumps([config.weights.to_dict(), files, config.tokenizer.to_dict(), mode,
                     request.text, max_new_tokens], sort_keys=True, default=str)
  return hashlib.sha1(blob.encode()).hexdigest()


def cached_records(runtime, mode: str, requests, prompt_ids, max_new_tokens: int,
                   keys: list[str], cache_path: str, chunk: int, who: str) -> list[dict]:
  """The records of `requests` in `mode`, decoding only those the cache lacks (each chunk of
  `chunk` requests is appended as it finishes, so an interrupted evaluation keeps its answers)."""
  from apar_jax.engine.host.cli_api import generate_records
  cached = {}
  if os.path.exists(cache_path):
    with open(cache_path, encoding='utf-8') as f:
      for line in f:
        try:
          entry = json.loads(line)
          cached[entry['key']] = entry['record']
        except (json.JSONDecodeError, KeyError, TypeError):
          continue  # a torn last line
  todo = [i for i, k in enumerate(keys) if k not in cached]
  if todo:
    print(f'[apar_eval] {who}: {len(todo)} of {len(requests)} answers to decode '
          f'({len(requests) - len(todo)} cached in {cache_path})', file=sys.stderr)
  with open(cache_path, 'a', encoding='utf-8') as f:
    for start in range(0, len(todo), chunk):
      part = todo[start:start + chunk]
      records = generate_records(runtime, mode, [requests[i].text for i in part],
                                 [prompt_ids[i] for i in part], max_new_tokens=max_new_tokens,
                                 progress=True, warmup=False)
      for i, record in zip(part, records):
        cached[keys[i]] = record
        f.write(json.dumps(dict(key=keys[i], record=record), ensure_ascii=False) + '\n')
      f.flush()
  return [cached[k] for k in keys]


def answer_ids(tokenizer, record: dict, stop_ids) -> list[int]:
  """The answer's text encoded afresh (the same tokenisation for both models' answers), followed by
  the stop token it ended with, if any."""
  ids = tokenizer.encode(record['text'])
  last = record['token_ids'][-1:] if record['token_ids'] else []
  return ids + (last if last and last[0] in set(stop_ids) else [])


def main(argv) -> None:
  del argv
  from apar_jax.bench.answer_nll import answer_nll, answer_nlls
  from apar_jax.bench.apar_eval_plot import plot_eval
  from apar_jax.bench.apar_eval_report import answer_row, nll_without_loops, report, summarise
  from apar_jax.bench.eval_requests import heldout_requests, read_prompts_file
  from apar_jax.engine.host.cli_api import generate_records
  from apar_jax.runtime import load_runtime
  from apar_jax.tokenization import encode_user_prompt
  from apar_jax.training.base_model import without_adapter
  config = CONFIG.value
  if not config.weights.get('adapter', ''):
    raise app.UsageError('--config has no weights.adapter: this benchmark evaluates an APAR fine-tune')
  if not os.path.exists(config.weights.adapter):
    raise app.UsageError(f'adapter {config.weights.adapter} not found: train it first with '
                         '`python -m apar_jax train --config=...`')
  if PROMPTS_FILE.value:
    try:
      requests = read_prompts_file(PROMPTS_FILE.value)
    except (OSError, ValueError) as e:
      raise app.UsageError(str(e)) from None
  else:
    requests = heldout_requests(int(config.distill.prompt_seed), NUM_LIST.value, NUM_PLAIN.value)
  os.makedirs(OUT_DIR.value, exist_ok=True)
  budget = MAX_NEW_TOKENS.value
  t0 = time.perf_counter()

  apar_rt = load_runtime(_engine_sized(config, SLOTS.value, CONCURRENT.value))
  tok = apar_rt.tokenizer
  stops = tuple(tok.stop_ids)
  prompt_ids = [encode_user_prompt(tok, r.text, config.tokenizer) for r in requests]
  apar = cached_records(apar_rt, MODE.value, requests, prompt_ids, budget,
                        [apar_cache_key(config, MODE.value, r, budget) for r in requests],
                        os.path.join(OUT_DIR.value, 'apar_answers.jsonl'), 12 * CONCURRENT.value,
                        'APAR model')
  t_apar = time.perf_counter() - t0

  base_config = _engine_sized(without_adapter(config), BASE_BATCH.value, BASE_BATCH.value)
  base_rt = load_runtime(base_config)
  base = cached_records(base_rt, 'ar', requests, prompt_ids, budget,
                        [base_cache_key(config, r, budget) for r in requests],
                        os.path.join(OUT_DIR.value, 'base_ar_answers.jsonl'), 4 * BASE_BATCH.value,
                        'base model')

  apar_rows = [answer_row(r, rec, stops) for r, rec in zip(requests, apar)]
  base_rows = [answer_row(r, rec, stops) for r, rec in zip(requests, base)]
  lists = [i for i, r in enumerate(requests) if r.kind == 'list']
  nll = {}
  for side, records in (('apar', apar), ('base', base)):
    answers = [answer_ids(tok, records[i], stops) for i in lists]
    sums, counts = answer_nlls(base_rt.model, base_rt.params, [prompt_ids[i] for i in lists],
                               answers, progress=True)
    nll[side] = (sums, counts)
  plain = [i for i, row in enumerate(base_rows)
           if requests[i].kind == 'plain' and row.finished and row.items < 2]
  plain_nll = None
  if plain:
    plain_answers = [answer_ids(tok, base[i], stops) for i in plain]
    plain_prompts = [prompt_ids[i] for i in plain]
    plain_nll = (answer_nll(base_rt.model, base_rt.params, plain_prompts, plain_answers),
                 answer_nll(apar_rt.model, apar_rt.params, plain_prompts, plain_answers))
  sides = dict(apar=apar_rows, base=base_rows)
  clean_nll = {side: nll_without_loops([sides[side][i] for i in lists], *nll[side]) for side in nll}
  summary = summarise(apar_rows, base_rows,
                      apar_answer_nll=float(nll['apar'][0].sum() / nll['apar'][1].sum()),
                      base_answer_nll=float(nll['base'][0].sum() / nll['base'][1].sum()),
                      plain_nll=plain_nll, clean_nll=clean_nll)
  summary.update(mode=MODE.value, max_new_tokens=budget, requests_from=PROMPTS_FILE.value or
                 'held-out split', plain_answers_scored=len(plain), apar_decode_s=t_apar,
                 wall_time_s=time.perf_counter() - t0)
  per_answer_nll = {side: {requests[i].id: float(s / max(c, 1)) for i, s, c in
                           zip(lists, *nll[side])} for side in nll}
  with open(os.path.join(OUT_DIR.value, 'apar_eval.json'), 'w', encoding='utf-8') as f:
    json.dump(dict(summary=summary, answers=[
        dict(request=dataclasses.asdict(r), apar=dataclasses.asdict(a), base=dataclasses.asdict(b),
             apar_nll=per_answer_nll['apar'].get(r.id), base_nll=per_answer_nll['base'].get(r.id))
        for r, a, b in zip(requests, apar_rows, base_rows)]), f, indent=1, ensure_ascii=False)
  plot_eval(summary, apar_rows, os.path.join(OUT_DIR.value, 'apar_eval.png'))
  print(report(summary))


if __name__ == '__main__':
  app.run(main)
