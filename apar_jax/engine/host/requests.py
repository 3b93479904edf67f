"""What goes into the engine (`Request`) and what comes out (`Result`, stream events)."""

import dataclasses
from typing import Any, Optional, Sequence

from apar_jax.engine.host.tree_reassembly import Branch


@dataclasses.dataclass(frozen=True)
class Request:
  """One prompt and its decoding settings.

  Give `token_ids` (used as they are) or `prompt` (encoded by the engine with the config's chat
  template); with both, `prompt` is only echoed in the result.
  """
  prompt: Optional[str] = None
  token_ids: Optional[Sequence[int]] = None
  max_new_tokens: Optional[int] = None  # per branch; default config.generate.max_new_tokens
  temperature: float = 0.0  # 0 = greedy
  top_k: int = 0  # 0 = off
  top_p: float = 1.0  # 1.0 = off
  seed: int = 0
  arrival_s: float = 0.0  # serving: not admitted before this many seconds after the `generate` call
  repetition_penalty: float = 1.0  # 1.0 = off; AR / APAR modes (`apar_jax.repeat_penalty`)
  no_repeat_ngram: int = 0  # 0 = off; AR / APAR modes
  # False: the repetition penalty spares tokens without a letter (list scaffolding: digits, `**`,
  # `:`, newlines), so only repeated words are penalised
  penalize_symbols: bool = True


@dataclasses.dataclass
class Result:
  """One request's answer and its decoding statistics (the CLI's JSONL record fields and more)."""
  prompt: Optional[str]
  mode: str
  text: str
  token_ids: list[int]  # pre-order answer without control tokens; the root's stop token kept last
  num_generated_tokens: int  # len(token_ids)
  decode_steps: int  # engine steps in which the request had a live branch
  wall_time_s: float  # from the `generate` call to the chunk that finished the request (latency of
  # a request with an `arrival_s` = wall_time_s - arrival_s)
  forks: int
  max_live_branches: int
  peak_kv_pages: int  # most pages the request had allocated at once (shared pages counted once)
  mean_accepted_tokens: float  # tokens emitted per (live branch, step): 1.0 for AR and APAR
  attended_kv_tokens: int  # KV positions read by its queries, summed over decode steps
  refused_forks: int  # `[Fork]` chosen but refused for want of a slot, pages or branch quota
  sampled_tokens: int  # tokens emitted by all branches ([Fork] and each branch's stop included)
  prompt_tokens: int
  branches: list[Branch]

  def to_record(self) -> dict[str, Any]:
    """A JSON-serialisable dict: the CLI contract's fields plus the extras above."""
    record = dataclasses.asdict(self)
    record['branches'] = [dataclasses.asdict(b) for b in self.branches]
    for b in record['branches']:
      b['tokens'] = list(b['tokens'])
    return record


@dataclasses.dataclass(frozen=True)
class TokensEvent:
  """New tokens of one branch after a chunk (stream order = device order, not reading order)."""
  index: int  # position of the request in the `generate`/`stream` input
  branch_id: int
  parent: int
  fork_point: int
  new_tokens: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class DoneEvent:
  """A request finished (or was cancelled: then `result` holds what it had decoded)."""
  index: int
  result: Result
  cancelled: bool = False


@dataclasses.dataclass(frozen=True)
class ChunkEvent:
  """The engine after one chunk (yielded before that chunk's token events, if asked for)."""
  time_s: float  # since the `generate`/`stream` call
  steps: int  # decode steps run so far
  pages_in_use: int  # KV pages allocated at the end of the chunk
  live_branches: int  # slots decoding at the end of the chunk
  requests_in_flight: int  # admitted, not finished (before this chunk's completions)
  requests_waiting: int  # in the host queue (not arrived yet, or no room)


@dataclasses.dataclass(frozen=True)
class PreparedRequest:
  """A validated request: prompt ids and resolved settings."""
  index: int
  prompt: Optional[str]
  ids: tuple[int, ...]
  max_new: int
  temperature: float
  top_k: int
  top_p: float
  seed: int
  arrival_s: float = 0.0
  repetition_penalty: float = 1.0
  no_repeat_ngram: int = 0
  penalize_symbols: bool = True


class CapacityError(ValueError):
  """A request the engine can never hold: `limit` is 'context' (longer than a slot or the model's
  positions) or 'pages' (more KV pages than the pool has)."""

  def __init__(self, limit: str, message: str):
    super().__init__(message)
    self.limit = limit


def check_settings(max_new: int, temperature: float, top_k: int, top_p: float,
                   max_new_capacity: int) -> None:
  """Raises ValueError on settings the engine cannot honour."""
  if max_new < 1:
    raise ValueError(f'max_new_tokens must be >= 1, got {max_new}')
  if max_new > max_new_capacity:
    raise ValueError(f'max_new_tokens {max_new} exceeds the engine output buffer '
                     f'({max_new_capacity}); raise --config.engine.max_new_tokens')
  if temperature < 0 or top_k < 0 or not 0 < top_p <= 1:
    raise ValueError(f'need temperature >= 0, top_k >= 0 and 0 < top_p <= 1; got {temperature}, '
                     f'{top_k}, {top_p}')
