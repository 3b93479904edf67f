"""Engine modes as benchmark contenders, and the engine capacities each measurement uses.

Batch 1 (the latency table): AR and speculative modes get one slot; APAR modes get `apar_slots`
branch slots (a branch needs a slot, and every slot is a row of every step: that cost is APAR's and
is measured). Serving: every mode gets the same slots and the same KV page budget. Capacities follow
from the workload in `apar_jax.engine.setup.build.sized_config`.
"""

import time
from typing import Any, Optional, Sequence

import ml_collections

from apar_jax.bench.contender import Sample
from apar_jax.engine.host.engine import Engine
from apar_jax.engine.host.requests import Request
from apar_jax.engine.setup.build import build_engine


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
    self.config = runtime.config  # sized for the workload in `setup` (which reports a bad mode)
    self.engine: Optional[Engine] = None

  def setup(self) -> float:
    t0 = time.perf_counter()
    rt = self.runtime
    self.engine = build_engine(rt.config, self.mode, params=rt.params, tokenizer=rt.tokenizer,
                               mesh=rt.mesh, **self.sizing)
    self.config = self.engine.config
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
