"""What `python -m apar_jax generate --mode=<engine mode>` calls: prompts in, JSONL records out.

Modes: ar, apar and every drafter alone or with APAR (`apar_jax.modes.MODES`)
(`apar_jax.modes.MODES`); speculative modes read `config.speculative` (drafter checkpoint, tree).

    records = generate_records(runtime, 'apar', prompts, prompt_ids, max_new_tokens=256,
                               temperature=0.0, top_k=0, top_p=1.0, seed=0, on_tokens=None)

`on_tokens(index, branch_id, parent_branch, fork_point, new_ids)` is called after every chunk with
the tokens each branch gained (branches of one APAR answer arrive interleaved, in device order).
"""

import sys
from typing import Any, Callable, Optional, Sequence

import ml_collections
from tqdm import tqdm

from apar_jax import distributed
from apar_jax.engine.engine import Engine, engine_section
from apar_jax.engine.requests import DoneEvent, Request, TokensEvent
from apar_jax.engine.spec_config import resolve_speculative
from apar_jax.modes import split_mode
from apar_jax.engine.state import pages_for


def fit_engine_config(config: ml_collections.ConfigDict, prompt_lengths: Sequence[int],
                      max_new_tokens: int, mode: str = 'apar',
                      slack: int = 0) -> ml_collections.ConfigDict:
  """A copy of `config` whose engine is sized for these prompts.

  `pages_per_slot` becomes what the longest prompt plus `max_new_tokens` needs (rounded up to 4
  pages), because the attention reads every page-table entry of a slot: a table sized for the default
  1k-token view makes short requests pay for it. `max_new_tokens` and `num_pages` are raised when too
  small (never lowered). In modes without APAR no slot is ever needed for a branch, so `max_slots` is
  capped at the number of prompts: idle slots still cost a row of every step. `slack`: positions a
  speculative step writes past the budget (`SpecConfig.slack`; own page-table columns, so it only
  grows `num_pages`).
  """
  config = ml_collections.ConfigDict(config.to_dict())
  eng = ml_collections.ConfigDict(engine_section(config).to_dict())
  eng.max_new_tokens = max(int(eng.max_new_tokens), int(max_new_tokens))
  need = pages_for(max(prompt_lengths) - 1 + int(max_new_tokens), int(eng.page_size))
  eng.pages_per_slot = -(-need // 4) * 4
  eng.num_pages = max(int(eng.num_pages), eng.pages_per_slot + pages_for(slack, int(eng.page_size)))
  if not split_mode(mode)[0]:
    eng.max_slots = min(int(eng.max_slots), len(prompt_lengths))
    eng.max_requests = min(int(eng.max_requests), eng.max_slots)
  config.engine = eng
  return config


def sized_engine(runtime: Any, mode: str, prompt_lengths: Sequence[int], max_new_tokens: int,
                 **engine_overrides: Any) -> Engine:
  """An engine of `mode` over the runtime's weights, sized for these prompts (`fit_engine_config`,
  the drafter's verification window included), `engine_overrides` applied last. The drafter's trees
  are planned for the row buckets of that engine."""
  config = fit_engine_config(runtime.config, prompt_lengths, max_new_tokens, mode)
  config.engine.update(engine_overrides)
  speculative = resolve_speculative(config, mode, runtime.params)
  if speculative is not None and speculative.spec.slack:
    config = fit_engine_config(config, prompt_lengths, max_new_tokens, mode, speculative.spec.slack)
    config.engine.update(engine_overrides)
  if speculative is not None and speculative.plan and distributed.is_main_process():
    print(f'[tree_plan] {mode}: ' + '; '.join(c.describe() for c in speculative.plan),
          file=sys.stderr)
  return Engine(config, mode, params=runtime.params, tokenizer=runtime.tokenizer,
                mesh=runtime.mesh, speculative=speculative)


def generate_records(runtime: Any, mode: str, prompts: Sequence[str],
                     prompt_ids: Sequence[Sequence[int]], *, max_new_tokens: int,
                     temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
                     repetition_penalty: float = 1.0, no_repeat_ngram: int = 0,
                     penalize_symbols: bool = True,
                     on_tokens: Optional[Callable[..., None]] = None,
                     warmup: bool = True, progress: bool = False) -> list[dict[str, Any]]:
  """Decodes every prompt on the engine (continuous batching); one record per prompt, input order.

  With `warmup`, the engine compiles on a throwaway request first, so `wall_time_s` is decoding time.
  With `progress`, a bar of finished requests goes to stderr (process 0 of a multi-process job).
  """
  engine = sized_engine(runtime, mode, [len(i) for i in prompt_ids], max_new_tokens)
  if warmup:
    engine.warmup()
  requests = [Request(prompt=p, token_ids=ids, max_new_tokens=max_new_tokens,
                      temperature=temperature, top_k=top_k, top_p=top_p, seed=seed,
                      repetition_penalty=repetition_penalty, no_repeat_ngram=no_repeat_ngram,
                      penalize_symbols=penalize_symbols)
              for p, ids in zip(prompts, prompt_ids)]
  records: list[Optional[dict[str, Any]]] = [None] * len(requests)
  bar = tqdm(total=len(requests), desc=mode, unit='request', file=sys.stderr,
             disable=not (progress and distributed.is_main_process()))
  with bar:
    for event in engine.stream(requests, stream_tokens=on_tokens is not None):
      if isinstance(event, TokensEvent):
        on_tokens(event.index, event.branch_id, event.parent, event.fork_point, event.new_tokens)
      elif isinstance(event, DoneEvent):
        records[event.index] = event.result.to_record()
        bar.update(1)
  return records  # type: ignore[return-value]
