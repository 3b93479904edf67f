"""What the latency benchmark runs: a `Contender` (an engine mode or a peer) and one `Sample`."""

import dataclasses
from typing import Any, Optional, Protocol, Sequence


@dataclasses.dataclass
class Sample:
  """One greedy answer of one contender to one prompt."""
  token_ids: list[int]
  num_tokens: int
  decode_steps: int  # sequential forward steps that produced the answer
  wall_s: float  # request in -> answer out (prefill included)
  ttft_s: Optional[float] = None  # time to first token (a separate run with a 1-token budget)
  peak_kv_pages: Optional[int] = None  # None: the contender has no paged cache
  attended_kv_tokens: Optional[int] = None  # KV positions read over all steps
  mean_accepted_tokens: float = 1.0  # tokens accepted per branch per step
  forks: int = 0
  max_live_branches: int = 1


class Contender(Protocol):
  """Something that answers prompts greedily, one request at a time."""
  name: str
  kind: str  # 'engine' or 'peer'

  def setup(self) -> float:
    """Compiles / warms up; returns the seconds it took (reported as compile time)."""

  def run(self, prompt_ids: Sequence[int], max_new_tokens: int) -> Sample:
    """Answers one prompt (chat-templated token ids)."""

  def first_token_s(self, prompt_ids: Sequence[int]) -> float:
    """Seconds from request to first answer token (prefill + one step)."""

  def describe(self) -> dict[str, Any]:
    """Static facts for the report (capacities, library versions)."""
