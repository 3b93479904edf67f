"""Engine modes as benchmark contenders, and the engine capacities each measurement uses.

Batch 1 (the latency table): AR and speculative modes get one slot; APAR modes get `apar_slots`
branch slots (a branch needs a slot, and every slot is a row of every step: that cost is APAR's and
is measured). Serving: every mode gets the same slots and the same KV page budget.
"""

import time
from typing import Any, Optional, Sequence

import ml_collections

from apar_jax.bench.contender import Sample
from apar_jax.engine.engine import Engine, engine_section
from apar_jax.engine.requests import Request
from apar_jax.engine.state import pages_for


def sized_config(config: ml_collections.ConfigDict, *, max_prompt_len: int, max_new_tokens: int,
                 slots: int, requests: int, num_pages: Optional[int] = None,
                 chunk_steps: Optional[int] = None, slack: int = 0) -> ml_collections.ConfigDict:
  """A copy of `config` whose engine holds exactly this workload.

  `pages_per_slot` is the tightest table for the longest prompt plus `slack` (positions a
  speculative step writes past the budget; the reference attention reads a slot's whole table each
  step, so a loose one costs time on CPU); `num_pages` defaults to one full table per slot.
  """
  config = ml_collections.ConfigDict(config.to_dict())
  eng = ml_collections.ConfigDict(engine_section(config).to_dict())
  per_slot = pages_for(max_prompt_len - 1 + max_new_tokens + slack, int(eng.page_size))
  eng.update(max_new_tokens=int(max_new_tokens), pages_per_slot=per_slot, max_slots=int(slots),
             max_requests=int(requests),
             num_pages=int(num_pages) if num_pages is not None else slots * per_slot)
  if chunk_steps is not None:
    eng.chunk_steps = int(chunk_steps)
  config.engine = eng
  return config


def build_engine(runtime: Any, mode: str, config: ml_collections.ConfigDict,
                 **sizing: Any) -> tuple[Engine, ml_collections.ConfigDict]:
  """An engine of `mode` over the runtime's params and tokenizer, and its config (raises if the
  mode is unknown or cannot run). `config` was sized by `sized_config(**sizing)`; a speculative
  mode whose verification window needs room past the budget (`caps.slack`) is rebuilt with that
  room, reusing its resolved drafter."""
  engine = Engine(config, mode, params=runtime.params, tokenizer=runtime.tokenizer,
                  mesh=runtime.mesh)
  slack = int(getattr(engine.caps, 'slack', 0))
  if slack and sizing:
    config = sized_config(runtime.config, slack=slack, **sizing)
    engine = Engine(config, mode, params=runtime.params, tokenizer=runtime.tokenizer,
                    mesh=runtime.mesh, speculative=getattr(engine, 'speculative', None))
  return engine, config


def capacities(config: ml_collections.ConfigDict) -> dict[str, int]:
  """The engine capacities a report shows."""
  eng = config.engine
  return {k: int(eng[k]) for k in ('max_slots', 'max_requests', 'num_pages', 'page_size',
                                   'pages_per_slot', 'chunk_steps')}


class EngineContender:
  """One engine mode at batch 1 (`name` labels it in the report; default: the mode)."""
  kind = 'engine'

  def __init__(self, runtime: Any, mode: str, name: Optional[str] = None, **sizing: Any):
    self.name, self.mode, self.runtime, self.sizing = name or mode, mode, runtime, sizing
    self.config = sized_config(runtime.config, **sizing)
    self.engine: Optional[Engine] = None

  def setup(self) -> float:
    t0 = time.perf_counter()
    self.engine, self.config = build_engine(self.runtime, self.mode, self.config, **self.sizing)
    self.engine.warmup()  # compiles admit, prefill, the decode loop
    self.engine.warmup()  # and the state reset of every later call
    return time.perf_counter() - t0

  def run(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Sample:
    t0 = time.perf_counter()
    result = self.engine.generate([Request(token_ids=list(prompt_ids),
                                           max_new_tokens=max_new_tokens)])[0]
    wall = time.perf_counter() - t0
    return Sample(token_ids=list(result.token_ids), num_tokens=result.num_generated_tokens,
                  decode_steps=result.decode_steps, wall_s=wall,
                  peak_kv_pages=result.peak_kv_pages, attended_kv_tokens=result.attended_kv_tokens,
                  mean_accepted_tokens=float(result.mean_accepted_tokens), forks=result.forks,
                  max_live_branches=result.max_live_branches)

  def first_token_s(self, prompt_ids: Sequence[int]) -> float:
    t0 = time.perf_counter()
    self.engine.generate([Request(token_ids=list(prompt_ids), max_new_tokens=1)])
    return time.perf_counter() - t0

  def describe(self) -> dict[str, Any]:
    return {'capacities': capacities(self.config),
            'attention_impl': str(self.config.engine.get('attention_impl', 'auto'))}
