"""What `python -m apar_jax generate --mode=<engine mode>` calls: prompts in, JSONL records out.

Modes: ar, apar and every drafter alone or with APAR (`apar_jax.modes.MODES`); speculative modes
read `config.speculative` (drafter checkpoint, tree). The engine is sized to the prompts
(`engine.setup`).

    records = generate_records(runtime, 'apar', prompts, prompt_ids, max_new_tokens=256,
                               temperature=0.0, top_k=0, top_p=1.0, seed=0, on_tokens=None)

`on_tokens(index, branch_id, parent_branch, fork_point, new_ids)` is called after every chunk with
the tokens each branch gained (branches of one APAR answer arrive interleaved, in device order).
"""

import sys
from typing import Any, Callable, Optional, Sequence

from tqdm import tqdm

from apar_jax import distributed
from apar_jax.engine.host.requests import DoneEvent, Request, TokensEvent
from apar_jax.engine.setup.sections import engine_section
from apar_jax.engine.setup.build import engine_for


def generate_records(runtime: Any, mode: str, prompts: Sequence[str],
                     prompt_ids: Sequence[Sequence[int]], *, max_new_tokens: int,
                     temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
                     repetition_penalty: float = 1.0, no_repeat_ngram: int = 0,
                     penalize_symbols: bool = True,
                     on_tokens: Optional[Callable[..., None]] = None,
                     warmup: bool = True, progress: bool = False) -> list[dict[str, Any]]:
  """Decodes every prompt on the engine (continuous batching); one record per prompt, input order.

  With `warmup`, the engine compiles on a throwaway request first, so `wall_time_s` is decoding
  time. With `progress`, a bar of finished requests goes to stderr (process 0 of a multi-process
  job).
  """
  concurrent = min(len(prompt_ids), int(engine_section(runtime.config).max_requests))
  engine = engine_for(runtime, mode, max_prompt_len=max(map(len, prompt_ids)),
                      max_new_tokens=max_new_tokens, requests=concurrent)
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
