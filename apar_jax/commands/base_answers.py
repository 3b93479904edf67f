"""The base model answering generated requests in batches: what `distill` and the APAR evaluation share.

    runtime = base_runtime(config)                  # the config's model without any adapter
    for batch in answer_batches(runtime, config, dc, prompts, desc='distill'):
      for item in batch: ...                        # Answered: ids, decoded text, finished or cut

Decoding uses the paged engine (AR mode) when it is available, else the dense-cache generator:
`make_answerer` is the one place that chooses. Every process of a multi-process job runs the same
batches (the decoding spans all of them); the progress bar shows on process 0 only.
"""

import dataclasses
import sys
import time
from typing import Any, Callable, Iterator, Sequence

import ml_collections
from tqdm import tqdm

from apar_jax import distributed
from apar_jax.apar_data.prompt_generator import Prompt
from apar_jax.tokenization import encode_chat

# (prompt token ids) -> (answer token ids, the last one a stop id when the answer finished)
Answerer = Callable[[Sequence[Sequence[int]]], list[list[int]]]
BACKENDS = ('auto', 'engine', 'dense')


@dataclasses.dataclass(frozen=True)
class Answered:
  """One request and the base model's answer."""
  prompt: Prompt
  prompt_ids: list[int]
  answer_ids: list[int]  # ends with a stop id when `finished`
  finished: bool  # ended with a stop token, not the budget
  text: str  # the answer without its stop token


def base_runtime(config: ml_collections.ConfigDict) -> Any:
  """The config's model, params and tokenizer without any adapter (the base model answers)."""
  from apar_jax.runtime import load_runtime
  from apar_jax.training.base_model import without_adapter
  return load_runtime(without_adapter(config))


def _engine_available() -> bool:
  try:
    from apar_jax.engine.engine import Engine  # noqa: F401
  except ImportError:
    return False
  return True


def check_backend(dc: ml_collections.ConfigDict) -> str:
  """`dc.backend`, or a ValueError naming the choices."""
  if dc.backend not in BACKENDS:
    raise ValueError(f'config.distill.backend must be one of {BACKENDS}, got {dc.backend!r}')
  return dc.backend


def make_answerer(runtime: Any, config: ml_collections.ConfigDict, dc: ml_collections.ConfigDict,
                  max_prompt_len: int = 0) -> tuple[Answerer, str]:
  """(answerer, backend name) over `runtime`: the engine in AR mode if present, else DenseGenerator.

  `dc` holds the sampling settings (`config.distill`). With `max_prompt_len`, the engine's page
  tables are sized for prompts that long plus the answer budget (`cli_api.fit_engine_config`): the
  attention reads every table entry, so a table sized for the default view costs several times the
  time per step.
  """
  backend = check_backend(dc)
  if backend == 'auto':
    backend = 'engine' if _engine_available() else 'dense'
  tok = runtime.tokenizer
  if backend == 'engine':
    from apar_jax.engine.cli_api import fit_engine_config
    from apar_jax.engine.engine import Engine
    from apar_jax.engine.requests import Request
    if max_prompt_len:
      config = fit_engine_config(config, [max_prompt_len] * int(dc.batch_size),
                                 int(dc.max_new_tokens), mode='ar')
    engine = Engine(config, mode='ar', params=runtime.params, tokenizer=tok, mesh=runtime.mesh)

    def answer(prompts):
      requests = [Request(token_ids=list(p), max_new_tokens=int(dc.max_new_tokens),
                          temperature=float(dc.temperature), top_k=int(dc.top_k),
                          top_p=float(dc.top_p), seed=int(dc.seed)) for p in prompts]
      return [list(r.token_ids) for r in engine.generate(requests)]
    return answer, backend

  from apar_jax.generate import DenseGenerator, SamplingParams
  generator = DenseGenerator(runtime.model, runtime.params, stop_ids=tok.stop_ids,
                             banned_ids=(tok.fork_id, tok.child_id), chunk_steps=32)
  sampling = SamplingParams(float(dc.temperature), int(dc.top_k), float(dc.top_p), int(dc.seed))

  def answer(prompts):
    return generator.generate([list(p) for p in prompts], int(dc.max_new_tokens), sampling)['tokens']
  return answer, backend


def encode_request(tokenizer: Any, config: ml_collections.ConfigDict, prompt: Prompt) -> list[int]:
  """The request as a one-turn chat in the config's template."""
  return encode_chat(tokenizer, [{'role': 'user', 'content': prompt.text}],
                     config.tokenizer.chat_template, system_prompt=config.tokenizer.system_prompt)


def answer_batches(runtime: Any, config: ml_collections.ConfigDict, dc: ml_collections.ConfigDict,
                   prompts: Sequence[Prompt], desc: str) -> Iterator[list[Answered]]:
  """Answers `prompts` `dc.batch_size` at a time, yielding each batch's answers in order (stop
  iterating to stop decoding). Progress (answers, tokens/s) on stderr, process 0 only."""
  tok = runtime.tokenizer
  ids = [encode_request(tok, config, p) for p in prompts]
  if not ids:
    return
  answer, backend = make_answerer(runtime, config, dc, max(map(len, ids)))
  main = distributed.is_main_process()
  if main:
    print(f'[{desc}] decoding with the {backend} backend, batch {dc.batch_size}, up to '
          f'{dc.max_new_tokens} new tokens', file=sys.stderr)
  stops = set(tok.stop_ids)
  size = int(dc.batch_size)
  tokens_out, t0 = 0, time.perf_counter()
  with tqdm(total=len(prompts), desc=desc, unit='answer', file=sys.stderr, dynamic_ncols=True,
            disable=not main) as bar:
    for start in range(0, len(prompts), size):
      batch = []
      for p, prompt_ids, out in zip(prompts[start:start + size], ids[start:start + size],
                                    answer(ids[start:start + size])):
        finished = bool(out) and out[-1] in stops
        batch.append(Answered(p, prompt_ids, out, finished,
                              tok.decode(out[:-1] if finished else out)))
        tokens_out += len(out)
      bar.update(len(batch))
      bar.set_postfix(tok_s=f'{tokens_out / (time.perf_counter() - t0):.0f}')
      yield batch
