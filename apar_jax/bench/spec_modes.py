"""Benchmark: speculative engine modes vs AR at batch 1 (tokens/s, mean accepted tokens per step).

    python -m apar_jax.bench.spec_modes --config=configs/smollm2_135m.py \
        [--modes=ar,lookup,medusa,hidden_transfer] [--new_tokens=64] [--repeats=2] \
        [--prompts_file=data/category_prompts.jsonl]

One engine per mode (one slot, sized by `engine.setup.build.sized_config`), every mode compiled
first, then the modes timed in turn over the same prompts (best of `repeats`). Greedy: each
speculative answer is checked token-identical to AR. A drafter without a trained checkpoint under
`config.speculative` is run with untrained params (zero Medusa heads / identity Hidden Transfer
maps) and marked `untrained`: its figure shows the step cost, not a speed-up. With a
`--prompts_file` whose prompts carry a "category" (the shipped 13-category drafter set,
`data/category_prompts.jsonl`), a table follows: tokens per step of every mode in every category.
Every drafting mode then prints the acceptance it reached per tree (level, rank), counted by the
engine (`speculative.acceptance_tally`); `--acceptance_out` writes them as JSON, which
`--config.speculative.acceptance_file` gives back to the tree planner (entry by entry in place of
the configured priors or the drafter checkpoint's table)."""

import sys
import time
from typing import Any

import jax
import ml_collections
from absl import app, flags
from ml_collections import config_flags

from apar_jax.engine.setup.build import build_engine, sized_config
from apar_jax.engine.host.requests import Request
from apar_jax.engine.setup.speculative import resolve_speculative, speculative_section
from apar_jax.modes import CHECKPOINT_DRAFTERS, split_mode
from apar_jax.bench.categories import category_table
from apar_jax.bench.prompts import BenchPrompt, load_prompts
from apar_jax.bench.timing import best_interleaved, load_with_prompts
from apar_jax.speculative import acceptance_tally

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (get_config()).',
                                          lock_config=False)
_MODES = flags.DEFINE_list('modes', ['ar', 'lookup', 'medusa', 'hidden_transfer'], 'Engine modes.')
_NEW = flags.DEFINE_integer('new_tokens', 64, 'Tokens per answer.')
_REPEATS = flags.DEFINE_integer('repeats', 2, 'Timed repeats (best is reported).')
_PROMPTS_FILE = flags.DEFINE_string(
    'prompts_file', None, '.jsonl ("prompt", optional "category") or .txt prompts; default: three '
    'built-in prompts. The 13-category drafter set: data/category_prompts.jsonl.')
_MAX_PROMPTS = flags.DEFINE_integer('max_prompts', 0, 'Use the first N prompts (0 = all).')
_ACCEPTANCE_OUT = flags.DEFINE_string(
    'acceptance_out', '', 'Write every drafting mode\'s measured acceptance per (level, rank) to '
    'this JSON file (read back by --config.speculative.acceptance_file).')

PROMPTS = [
    'Repeat this sentence exactly: The quick brown fox jumps over the lazy dog near the river bank.',
    'List three benefits of regular exercise.',
    'Explain what a binary search does, then write it in Python.',
]


def _log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def _setup(config: ml_collections.ConfigDict, mode: str, params: Any):
  """(setup, note): the mode's drafter, untrained if no checkpoint exists."""
  _, kind = split_mode(mode)
  if kind is None:
    return None, ''
  try:
    note = 'trained' if kind in CHECKPOINT_DRAFTERS else ''  # lookup, recycling: training-free
    return resolve_speculative(config, mode, params), note
  except FileNotFoundError:
    d = int(config.model.d_model)
    if kind == 'medusa':
      from apar_jax.speculative.medusa import init_medusa
      dparams, info = init_medusa(3, d), {}
    else:
      from apar_jax.speculative.hidden_transfer import init_hidden_transfer
      layer = int(config.model.n_layers) * 2 // 3
      dparams, info = init_hidden_transfer(3, d), {'transfer_layer': layer}
    return resolve_speculative(config, mode, params, drafter_params=dparams,
                               drafter_info=info), 'untrained'


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  prompts = (load_prompts(_PROMPTS_FILE.value, _MAX_PROMPTS.value or None) if _PROMPTS_FILE.value
             else [BenchPrompt(p) for p in PROMPTS])
  runtime, ids = load_with_prompts(config, [p.prompt for p in prompts])
  tok = runtime.tokenizer
  new = _NEW.value
  sec = speculative_section(config)
  _log(f'[spec_modes] {config.name}: {jax.default_backend()}, batch 1, {len(ids)} prompts x {new} '
       f'new tokens, best of {_REPEATS.value}; tree={sec.tree!r} max_tree_nodes='
       f'{sec.max_tree_nodes} topk={sec.topk} lookup_num_draft={sec.lookup_num_draft}')
  requests = [Request(token_ids=i, max_new_tokens=new) for i in ids]
  engines, notes, results = {}, {}, {}
  for mode in _MODES.value:
    sizing = dict(max_prompt_len=max(map(len, ids)), max_new_tokens=new, slots=1, requests=1,
                  chunk_steps=32)
    setup, notes[mode] = _setup(sized_config(runtime.config, mode, **sizing), mode,
                                runtime.params)  # trees planned for one row
    t0 = time.perf_counter()
    engines[mode] = build_engine(runtime.config, mode, params=runtime.params, tokenizer=tok,
                                 speculative=setup, **sizing)
    engines[mode].generate(requests[:1])  # compile
    if setup and setup.plan:
      notes[mode] += f' planned: {setup.plan[0].describe()}'
    elif setup:
      notes[mode] += f' tree T={setup.spec.tree.num_nodes} Q={setup.spec.query_tokens}'
    _log(f'[spec_modes] {mode}: compiled and warmed up in {time.perf_counter() - t0:.1f}s')
  times = best_interleaved({m: (lambda m=m: results.__setitem__(m, engines[m].generate(requests)))
                            for m in engines}, _REPEATS.value)
  base = None
  for mode in engines:
    res = results[mode]
    tokens = sum(r.num_generated_tokens for r in res)
    steps = sum(r.decode_steps for r in res)
    rate = tokens / times[mode]
    base = base or (rate if mode == 'ar' else None)
    same = ('-' if 'ar' not in results or mode == 'ar' else
            all(a.token_ids == b.token_ids for a, b in zip(results['ar'], res)))
    ratio = f'{rate / base:.2f}x AR' if base else ''
    stats = engines[mode].last_stats
    if "draft_chunks" in stats:  # chunks with / without draft since the engine was built
      notes[mode] += (f'; chunks drafted {stats["draft_chunks"]}, undrafted '
                      f'{stats["no_draft_chunks"]} (draft quality {stats["draft_quality"]})')
    print(f'{mode:>16}: {rate:6.2f} tokens/s {ratio:>9}, {tokens} tokens in {steps} steps, '
          f'mean_accepted_tokens {sum(r.sampled_tokens for r in res) / max(steps, 1):.2f}, '
          f'{1e3 * times[mode] / steps:.1f} ms/step, identical_to_ar={same} {notes[mode]}')
  categories = [p.category for p in prompts]
  if any(categories):
    print(category_table({m: results[m] for m in engines}, categories))
  measured = {m: e.acceptance_tally for m, e in engines.items() if e.acceptance_tally is not None}
  for mode, tally in measured.items():
    print(f'\n{mode}: acceptance per tree (level, rank), kept / tried (tried) over every timed and '
          f'warm-up run\n{acceptance_tally.describe(tally)}')
  if _ACCEPTANCE_OUT.value:
    acceptance_tally.write(_ACCEPTANCE_OUT.value, {split_mode(m)[1]: t for m, t in measured.items()},
                           source=f'spec_modes, {len(ids)} prompts x {new} tokens, {config.name}')
    _log(f'[spec_modes] acceptance tables written to {_ACCEPTANCE_OUT.value}')


if __name__ == '__main__':
  app.run(main)
