"""The APAR branch timeline of one request: which branch emits a token at which decode step.

Decoded with one step per chunk (`chunk_steps=1`) and chunk events on, so every token event is
pinned to its exact step. When the benchmarked model forked on no prompt, the timeline comes from
`forky.py`'s tiny model instead, labelled as such.
"""

import sys
from typing import Any, Optional, Sequence

from apar_jax.bench import forky
from apar_jax.engine.setup.build import build_engine, sized_config
from apar_jax.engine.host.engine import Engine
from apar_jax.engine.host.requests import ChunkEvent, DoneEvent, Request, TokensEvent


def record_timeline(engine: Engine, prompt_ids: Sequence[int],
                    max_new_tokens: int) -> dict[str, Any]:
  """Decodes one request step by step; per branch: parent, fork point, the step of every token it
  emitted (a step repeats when a speculative step accepts several), the steps of its `[Fork]`s."""
  fork_id = engine.ids.fork
  branches: dict[int, dict[str, Any]] = {}
  step, result = -1, None
  for event in engine.stream([Request(token_ids=list(prompt_ids), max_new_tokens=max_new_tokens)],
                             chunk_steps=1, chunk_events=True):
    if isinstance(event, ChunkEvent):
      step += 1
    elif isinstance(event, TokensEvent):
      b = branches.setdefault(event.branch_id, {'branch': event.branch_id, 'parent': event.parent,
                                                'fork_point': event.fork_point, 'steps': [],
                                                'fork_steps': []})
      for tok in event.new_tokens:  # one step per chunk (speculative modes: several tokens)
        b['steps'].append(step)
        if tok == fork_id:
          b['fork_steps'].append(step)
    elif isinstance(event, DoneEvent):
      result = event.result
  return {'steps': step + 1, 'decode_steps': result.decode_steps, 'forks': result.forks,
          'generated_tokens': result.num_generated_tokens,
          'max_live_branches': result.max_live_branches,
          'branches': [branches[k] for k in sorted(branches)]}


def apar_timeline(runtime: Any, mode: str, prompt_ids: Sequence[Sequence[int]],
                  forks_per_prompt: Optional[Sequence[int]], max_new_tokens: int,
                  slots: int) -> dict[str, Any]:
  """The timeline of the prompt on which `mode` forked most, else of the forky tiny model."""
  if forks_per_prompt and max(forks_per_prompt) > 0:
    best = max(range(len(forks_per_prompt)), key=lambda i: forks_per_prompt[i])
    sizing = dict(max_prompt_len=len(prompt_ids[best]), max_new_tokens=max_new_tokens,
                  slots=slots, requests=1)
    engine = build_engine(runtime.config, mode, params=runtime.params, tokenizer=runtime.tokenizer,
                          mesh=runtime.mesh, **sizing)
    source = f'{runtime.config.name}, mode {mode}, prompt {best}'
    ids, budget = prompt_ids[best], max_new_tokens
  else:
    print(f'[bench] {mode} forked on no prompt: branch timeline from the tiny forky model',
          file=sys.stderr)
    config = sized_config(forky.forky_config(), 'apar', max_prompt_len=len(forky.PROMPT),
                          max_new_tokens=24, slots=8, requests=1)
    engine = Engine(config, 'apar', params=forky.forky_params(config),
                    control_ids=forky.CONTROL_IDS)
    source, ids, budget = forky.LABEL, forky.PROMPT, 24
  timeline = record_timeline(engine, ids, budget)
  timeline.update(source=source, mode=mode, fallback=source == forky.LABEL)
  return timeline
