"""The base model answering generated requests (what `distill` decodes with).

    runtime = base_runtime(config)                  # the config's model without any adapter
    queue = collections.deque(Job(prompt, attempt, seed) for ...)
    for job, item in answer_stream(runtime, config, dc, queue):
      ...                                           # answers as they finish; append to `queue`
                                                    # while iterating to ask for more

`answer_stream` streams through the engine in AR mode (continuous batching: a finished answer's slot
takes the next request at once, no batch waits for its longest answer; each job has its own sampling
seed) when it is available, else decodes fixed batches with the dense-cache generator
(`dc.backend`). Every process of a multi-process job runs the same requests (the decoding spans all
of them).
"""

import collections
import dataclasses
import itertools
from typing import Any, Callable, Iterator, Optional, Sequence

import ml_collections

from apar_jax.apar_data.format_demos import demo_turns
from apar_jax.apar_data.prompt_generator import Prompt
from apar_jax.tokenization import encode_user_prompt

BACKENDS = ('auto', 'engine', 'dense')


@dataclasses.dataclass(frozen=True)
class Answered:
  """One request and the base model's answer."""
  prompt: Prompt
  prompt_ids: list[int]
  answer_ids: list[int]  # ends with a stop id when `finished`
  finished: bool  # ended with a stop token, not the budget
  text: str  # the answer without its stop token
  given_up: str = ''  # why decoding stopped early (`answer_stream`'s `give_up`), '' if it did not


@dataclasses.dataclass(frozen=True)
class Job:
  """One answer to draw: the request, which attempt at it, and that attempt's sampling seed."""
  prompt: Prompt
  attempt: int = 0
  seed: int = 0


def base_runtime(config: ml_collections.ConfigDict) -> Any:
  """The config's model, params and tokenizer without any adapter (the base model answers)."""
  from apar_jax.runtime import load_runtime
  from apar_jax.training.base_model import without_adapter
  return load_runtime(without_adapter(config))


def _engine_available() -> bool:
  try:
    from apar_jax.engine.host.engine import Engine  # noqa: F401
  except ImportError:
    return False
  return True


def check_backend(dc: ml_collections.ConfigDict) -> str:
  """`dc.backend`, or a ValueError naming the choices."""
  if dc.backend not in BACKENDS:
    raise ValueError(f'config.distill.backend must be one of {BACKENDS}, got {dc.backend!r}')
  return dc.backend


def resolve_backend(dc: ml_collections.ConfigDict) -> str:
  """'engine' or 'dense' ('auto' = the engine when it is importable)."""
  backend = check_backend(dc)
  if backend == 'auto':
    backend = 'engine' if _engine_available() else 'dense'
  return backend


def ar_engine(runtime: Any, config: ml_collections.ConfigDict, dc: ml_collections.ConfigDict,
              max_prompt_len: int) -> Any:
  """The engine in AR mode over the runtime's weights, `dc.batch_size` requests at once (or the
  config's capacity if larger), page tables sized for prompts of `max_prompt_len` tokens plus the
  answer budget."""
  from apar_jax.engine.setup.sections import engine_section
  from apar_jax.engine.setup.build import build_engine
  eng = engine_section(config)
  size = int(dc.batch_size)
  return build_engine(config, 'ar', params=runtime.params, tokenizer=runtime.tokenizer,
                      mesh=runtime.mesh, max_prompt_len=max_prompt_len,
                      max_new_tokens=int(dc.max_new_tokens), slots=max(int(eng.max_slots), size),
                      requests=max(int(eng.max_requests), size))


def dense_answerer(runtime: Any, dc: ml_collections.ConfigDict) -> Callable[..., list[list[int]]]:
  """`answer(prompt ids, seed)`: a batch decoded together by the dense-cache generator
  (`[Fork]`/`[Child]` banned) with `dc`'s sampling settings and one seed for the batch."""
  from apar_jax.generate import DenseGenerator, SamplingParams
  tok = runtime.tokenizer
  generator = DenseGenerator(runtime.model, runtime.params, stop_ids=tok.stop_ids,
                             banned_ids=(tok.fork_id, tok.child_id), chunk_steps=32)

  def answer(prompts: Sequence[Sequence[int]], seed: int) -> list[list[int]]:
    sampling = SamplingParams(float(dc.temperature), int(dc.top_k), float(dc.top_p), seed)
    return generator.generate([list(p) for p in prompts], int(dc.max_new_tokens), sampling)['tokens']
  return answer


def encode_request(tokenizer: Any, config: ml_collections.ConfigDict, prompt: Prompt,
                   list_demo: str = '') -> list[int]:
  """The request as a one-turn chat in the config's template; a list request after the format
  demonstration `list_demo` (`apar_data.format_demos`, '' = none) when one is named."""
  turns = demo_turns(list_demo) if prompt.kind == 'list' else []
  return encode_user_prompt(tokenizer, prompt.text, config.tokenizer, earlier_turns=turns)


def _answered(tok: Any, prompt: Prompt, prompt_ids: list[int], out: list[int]) -> Answered:
  finished = bool(out) and out[-1] in set(tok.stop_ids)
  return Answered(prompt, prompt_ids, out, finished, tok.decode(out[:-1] if finished else out))


# How often (new tokens) `answer_stream` shows a partial answer to `give_up`.
GIVE_UP_EVERY = 32


def answer_stream(runtime: Any, config: ml_collections.ConfigDict, dc: ml_collections.ConfigDict,
                  queue: 'collections.deque[Job]',
                  give_up: Optional[Callable[[str], str]] = None) -> Iterator[tuple[Job, Answered]]:
  """Answers the jobs of `queue` (consumed from the left) and yields each as it finishes; jobs the
  caller appends while iterating are answered too. Ends when the queue is empty and nothing is in
  flight. Engine backend: continuous batching over `dc.batch_size` slots; dense: batches.

  `give_up(partial text) -> reason` (engine backend): every `GIVE_UP_EVERY` new tokens of an answer
  its text so far is shown to it; a non-empty reason cancels the answer, which is yielded unfinished
  with `given_up=reason` and its slot goes to the next job (it must be a reason that more tokens
  cannot undo, or the answer would have been judged differently had it run on)."""
  tok = runtime.tokenizer
  ids: dict[str, list[int]] = {}

  def prompt_ids(job: Job) -> list[int]:
    if job.prompt.id not in ids:
      ids[job.prompt.id] = encode_request(tok, config, job.prompt, dc.get('list_demo', ''))
    return ids[job.prompt.id]

  if not queue:
    return
  longest = max(len(prompt_ids(job)) for job in queue)
  repetition_penalty, no_repeat_ngram = float(dc.repetition_penalty), int(dc.no_repeat_ngram)
  if resolve_backend(dc) == 'dense':
    if repetition_penalty != 1.0 or no_repeat_ngram:
      raise ValueError('config.distill.repetition_penalty / no_repeat_ngram need the engine '
                       "backend (config.distill.backend='engine' or 'auto')")
    answer = dense_answerer(runtime, dc)
    while queue:
      batch = [queue.popleft() for _ in range(min(int(dc.batch_size), len(queue)))]
      outs = answer([prompt_ids(job) for job in batch], int(batch[0].seed))
      for job, out in zip(batch, outs):
        yield job, _answered(tok, job.prompt, prompt_ids(job), out)
    return

  from apar_jax.engine.host.request_feed import LiveFeed
  from apar_jax.engine.host.requests import DoneEvent, Request, TokensEvent
  engine = ar_engine(runtime, config, dc, longest)  # retries ask the same prompts again
  window = 2 * int(dc.batch_size)  # requests waiting for a slot
  feed = LiveFeed(max_waiting=window)
  in_flight: dict[int, Job] = {}
  counter = itertools.count()

  def top_up() -> None:
    while queue and feed.waiting() < window:
      job = queue.popleft()
      index = next(counter)
      in_flight[index] = job
      feed.submit(engine.prepare(index, Request(
          token_ids=prompt_ids(job), max_new_tokens=int(dc.max_new_tokens),
          temperature=float(dc.temperature), top_k=int(dc.top_k), top_p=float(dc.top_p),
          seed=int(job.seed), repetition_penalty=repetition_penalty,
          no_repeat_ngram=no_repeat_ngram,
          penalize_symbols=bool(dc.get('penalize_symbols', True)))))
    if not queue and not in_flight:
      feed.close()

  partial: dict[int, list[int]] = collections.defaultdict(list)
  checked: dict[int, int] = collections.defaultdict(int)
  reasons: dict[int, str] = {}

  def look(event: TokensEvent) -> None:
    tokens = partial[event.index]
    tokens.extend(event.new_tokens)
    if event.index in reasons or len(tokens) - checked[event.index] < GIVE_UP_EVERY:
      return
    checked[event.index] = len(tokens)
    reason = give_up(tok.decode(tokens))
    if reason:
      reasons[event.index] = reason
      feed.cancel(event.index)

  top_up()
  for event in engine.serve(feed, stream_tokens=give_up is not None):
    if isinstance(event, TokensEvent):
      look(event)
    elif isinstance(event, DoneEvent):
      job = in_flight.pop(event.index)
      partial.pop(event.index, None)
      checked.pop(event.index, None)
      answered = _answered(tok, job.prompt, prompt_ids(job), list(event.result.token_ids))
      reason = reasons.pop(event.index, '')
      if reason and not answered.finished:
        answered = dataclasses.replace(answered, given_up=reason)
      yield job, answered
      top_up()
