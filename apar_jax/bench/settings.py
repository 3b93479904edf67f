"""What one benchmark run measures (`BenchSettings`), filled from flags by `commands/bench.py`."""

import dataclasses
from typing import Optional

DEFAULT_MODES = ('ar', 'apar', 'medusa')
DEFAULT_SERVING_MODES = ('ar', 'apar', 'apar_medusa')
PEER_NAMES = ('hf_generate', 'hf_prompt_lookup')


@dataclasses.dataclass(frozen=True)
class BenchSettings:
  """Settings of one run; every mode and peer sees the same prompts, budget and repetitions."""
  modes: tuple[str, ...] = DEFAULT_MODES  # engine modes; 'ar' is added first when missing
  prompts_file: Optional[str] = None  # None = data/bench_prompts.jsonl
  max_prompts: Optional[int] = None  # the first N prompts only
  max_new_tokens: int = 48
  repeats: int = 2  # timed repetitions after a warm-up, interleaved across modes
  apar_slots: int = 8  # branch slots of an APAR engine at batch 1 (AR uses 1)
  apar_model: bool = True  # APAR modes decode the config's APAR fine-tune (weights.apar_adapter),
  #                          compared with AR on that model (the `ar_apar_model` row)
  chunk_steps: Optional[int] = None  # decode steps per device call at batch 1 (None = config)
  peers: bool = True  # transformers generate and prompt-lookup assisted generation
  prompt_lookup_tokens: int = 10  # draft length of transformers' prompt lookup
  peer_threads: int = 1  # torch threads of the peers (0 = torch's default); see peers.py
  serving: bool = True
  serving_modes: tuple[str, ...] = DEFAULT_SERVING_MODES
  serving_requests: int = 16
  serving_rate: float = 2.0  # requests per second (Poisson arrivals)
  serving_page_budget: int = 48  # KV pages of the whole engine under load
  serving_slots: int = 16  # branch slots under load (rows of every step)
  serving_chunk_steps: int = 8  # decode steps between admissions under load
  serving_repeats: int = 2  # loads per mode, interleaved (one load is noisy here)
  roofline: bool = True
  bandwidth_bytes: int = 1 << 30  # array read to measure memory bandwidth
  timeline: bool = True  # the APAR branch timeline of one request
  seed: int = 0  # arrival times of the serving load
  progress: bool = True

  def __post_init__(self):
    problems = []
    if not self.modes:
      problems.append('modes is empty')
    if self.max_new_tokens < 1:
      problems.append(f'max_new_tokens must be >= 1, got {self.max_new_tokens}')
    if self.repeats < 1 or self.serving_repeats < 1:
      problems.append('repeats and serving_repeats must be >= 1')
    if self.apar_slots < 1 or self.serving_slots < 1:
      problems.append('apar_slots and serving_slots must be >= 1')
    if self.serving and (self.serving_requests < 1 or not self.serving_rate > 0):
      problems.append('serving needs serving_requests >= 1 and serving_rate > 0')
    if self.serving_page_budget < 1 or self.serving_chunk_steps < 1:
      problems.append('serving_page_budget and serving_chunk_steps must be >= 1')
    if problems:
      raise ValueError('bench settings: ' + '; '.join(problems))

  def engine_modes(self) -> tuple[str, ...]:
    """The requested modes with 'ar' first (the baseline of every speed-up), duplicates dropped."""
    modes = ['ar'] + [m for m in self.modes if m != 'ar']
    return tuple(dict.fromkeys(modes))
