"""Engine set-up, done once: the capacities a workload needs, the drafter and its trees, the engine.

    config = sized_config(config, 'apar', max_prompt_len=40, max_new_tokens=256)
    engine = build_engine(config, 'medusa', params=params, tokenizer=tok,
                          max_prompt_len=40, max_new_tokens=256, slots=1, requests=1)
    engine = engine_for(runtime, 'apar', max_prompt_len=40, max_new_tokens=256)

`sized_config` is the one place engine capacities follow from a workload (the CLI, the demo, every
benchmark and the distillation's AR engine call it). `build_engine` sizes the config, resolves a
speculative mode's drafter and trees once on it (trees are planned for its row buckets), gives the
verification window its pages, and builds the engine over params the caller loaded.
"""

import sys
from typing import Any, Optional

import ml_collections

from apar_jax import distributed
from apar_jax.engine.host.engine import Engine
from apar_jax.engine.setup.sections import engine_section
from apar_jax.engine.setup.speculative import SpeculativeSetup, resolve_speculative
from apar_jax.engine.device.state import pages_for
from apar_jax.engine.device.token_choice import ControlIds
from apar_jax.modes import Mode


def sized_config(config: ml_collections.ConfigDict, mode: str = 'ar', *, max_prompt_len: int,
                 max_new_tokens: int, slots: Optional[int] = None,
                 requests: Optional[int] = None, num_pages: Optional[int] = None,
                 chunk_steps: Optional[int] = None, slack: int = 0) -> ml_collections.ConfigDict:
  """A copy of `config` whose engine holds this workload (the caller's config is untouched).

  - `max_new_tokens`: exactly the budget (a request may not ask for more).
  - `pages_per_slot`: the tightest table for the longest prompt plus the budget: the attention
    reads a slot's whole table every step, so a loose one costs time.
  - `max_slots` / `max_requests`: `slots` / `requests` when given, else the config's. Outside APAR
    no slot ever holds a branch, so slots are capped at `requests` and requests at slots.
  - `num_pages`: when given, exactly that pool; else the config's pool, raised so that every slot
    can hold a full table plus `slack` positions (a speculative step's verification window, which
    has its own page-table columns: `Capacities.table_width`).
  """
  apar = Mode.parse(mode).apar  # ValueError naming the modes
  if max_prompt_len < 1 or max_new_tokens < 1:
    raise ValueError(f'an engine workload needs max_prompt_len >= 1 and max_new_tokens >= 1, got '
                     f'{max_prompt_len} and {max_new_tokens}')
  config = ml_collections.ConfigDict(config.to_dict())
  eng = ml_collections.ConfigDict(engine_section(config).to_dict())
  page = int(eng.page_size)
  eng.max_new_tokens = int(max_new_tokens)
  eng.pages_per_slot = pages_for(max_prompt_len - 1 + max_new_tokens, page)
  eng.max_slots = int(slots) if slots is not None else int(eng.max_slots)
  eng.max_requests = int(requests) if requests is not None else int(eng.max_requests)
  if not apar:
    eng.max_slots = min(eng.max_slots, eng.max_requests)
    eng.max_requests = eng.max_slots
  if num_pages is not None:
    eng.num_pages = int(num_pages)
  else:
    full_tables = eng.max_slots * (eng.pages_per_slot + pages_for(slack, page))
    eng.num_pages = max(int(eng.num_pages), full_tables)
  if chunk_steps is not None:
    eng.chunk_steps = int(chunk_steps)
  config.engine = eng
  return config


def build_engine(config: ml_collections.ConfigDict, mode: str = 'ar', *, params: Any,
                 tokenizer: Any = None, control_ids: Optional[ControlIds] = None, mesh: Any = None,
                 drafter_params: Any = None, drafter_info: Optional[dict] = None,
                 speculative: Optional[SpeculativeSetup] = None, log_plan: bool = False,
                 **workload: Any) -> Engine:
  """An engine of `mode` over `params`, sized by `sized_config(config, mode, **workload)` when a
  workload is given (else `config` as it is).

  A speculative mode's drafter (the checkpoint of `config.speculative`, or `drafter_params` +
  `drafter_info`, or a resolved `speculative`) and trees are resolved once, on the sized config;
  its verification window then gets its pages. `log_plan`: print the planned trees to stderr.
  """
  if workload:
    config = sized_config(config, mode, **workload)
  if speculative is None and Mode.parse(mode).drafter is not None:
    speculative = resolve_speculative(config, mode, params, drafter_params=drafter_params,
                                      drafter_info=drafter_info)
  if workload and speculative is not None and speculative.spec.slack:
    config = sized_config(config, mode, slack=speculative.spec.slack, **workload)
  if log_plan and speculative is not None and speculative.plan and distributed.is_main_process():
    print(f'[tree_plan] {mode}: ' + '; '.join(c.describe() for c in speculative.plan),
          file=sys.stderr)
  return Engine(config, mode, params=params, tokenizer=tokenizer, control_ids=control_ids,
                mesh=mesh, speculative=speculative)


def engine_for(runtime: Any, mode: str = 'ar', **workload: Any) -> Engine:
  """`build_engine` over a loaded `apar_jax.runtime.Runtime` (its config, params, tokenizer and
  mesh); the planned trees are printed."""
  return build_engine(runtime.config, mode, params=runtime.params, tokenizer=runtime.tokenizer,
                      mesh=runtime.mesh, log_plan=True, **workload)
