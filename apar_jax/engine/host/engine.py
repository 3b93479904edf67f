"""`Engine`: the Python API of the decoding engine (AR and APAR modes, continuous batching).

    engine = Engine.from_runtime(load_runtime(config), mode='apar')   # params, tokenizer, mesh
    engine = Engine(config, 'apar', params=params, tokenizer=tokenizer)  # what you loaded
    engine = engine_for(runtime, 'medusa', max_prompt_len=64, max_new_tokens=256)  # engine.setup
    results = engine.generate([Request(prompt='...'), ...])
    for event in engine.stream(requests): ...       # TokensEvent per chunk, DoneEvent per request

The engine loads nothing itself: params and a tokenizer (or bare `control_ids`) come from the caller
(`apar_jax.runtime`), a trained drafter's params from `apar_jax.engine.setup` (`build_engine` /
`engine_for` load `config.speculative`'s checkpoint) or from the caller (`drafter_params`). Every
request is validated before anything is compiled or run.
"""

from typing import Any, Iterator, Optional, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from apar_jax.engine.device import data_shards
from apar_jax.engine.device.loop import EngineFunctions, compiled_functions
from apar_jax.engine.host.draft_control import DraftControl
from apar_jax.engine.setup.sections import engine_section, speculative_section  # noqa: F401
from apar_jax.engine.host.request_feed import LiveFeed, RequestFeed, TimedQueue
from apar_jax.engine.host.requests import (CapacityError, DoneEvent, PreparedRequest, Request,
                                           Result, check_settings)
from apar_jax.engine.host.scheduler import Scheduler
from apar_jax.engine.setup.speculative import SpeculativeSetup, resolve_speculative
from apar_jax.engine.device.state import Capacities, EngineState, pages_for
from apar_jax.engine.device.token_choice import ControlIds
from apar_jax.engine.host.tree_reassembly import Branch, reassemble
from apar_jax.modes import CHECKPOINT_DRAFTERS, Mode
from apar_jax.repeat_penalty import check_repeat_settings, letterless_ids



class Engine:
  """Paged-KV, static-slot decoding engine for one model config and mode."""

  def __init__(self, config: ml_collections.ConfigDict, mode: str = 'ar', *, params: Any,
               tokenizer: Any = None, control_ids: Optional[ControlIds] = None,
               mesh: Optional[jax.sharding.Mesh] = None, drafter_params: Any = None,
               drafter_info: Optional[dict] = None,
               speculative: Optional[SpeculativeSetup] = None):
    """A speculative mode takes `speculative` (resolved by `engine.setup`) or, for Medusa and Hidden
    Transfer, `drafter_params` (+ `drafter_info`, e.g. untrained heads); prompt lookup and token
    recycling need neither."""
    parsed = Mode.parse(mode)  # ValueError naming the modes
    self.config, self.mode = config, mode
    apar, drafter_kind = parsed.apar, parsed.drafter
    self._has_drafter = drafter_kind is not None
    eng = engine_section(config)
    if params is None:
      raise ValueError('Engine needs params: load them with apar_jax.runtime.load_runtime(config) '
                       'and use Engine.from_runtime(runtime, mode)')
    if drafter_kind in CHECKPOINT_DRAFTERS and speculative is None and drafter_params is None:
      raise ValueError(
          f'mode {mode!r} needs its trained drafter, and the Engine loads nothing: build it with '
          f'apar_jax.engine.setup.build_engine(config, {mode!r}, params=...) (or '
          'engine_for(runtime, mode)), which loads config.speculative\'s checkpoint, or pass '
          'drafter_params')
    if drafter_kind is not None and speculative is None:
      speculative = resolve_speculative(
          config, mode, params, drafter_params=drafter_params, drafter_info=drafter_info)
    # tree='auto': each row bucket's tree and its estimate (`tree_plan`); () otherwise
    self.tree_plan = speculative.plan if speculative is not None else ()
    if speculative is not None and not speculative.spec.drafts:
      speculative = None  # no bucket drafts: the base mode's own step, exactly
    self.speculative = speculative
    # with a tree plan: whether each chunk drafts, from the acceptance the requests reach
    self.draft_control = (DraftControl.from_plan(self.tree_plan, int(speculative_section(
        config).probe_every)) if speculative is not None and self.tree_plan else None)
    self.caps = Capacities.from_config(eng, slack=speculative.spec.slack if speculative else 0)
    self.attention_impl = str(eng.get('attention_impl', 'auto'))
    if tokenizer is None and control_ids is None:
      raise ValueError('Engine needs a tokenizer (or control_ids for token-id requests): '
                       'Engine.from_runtime(load_runtime(config), mode) loads both')
    self.tokenizer = tokenizer
    self.ids = control_ids or _ids_from_tokenizer(tokenizer)
    vocab = int(config.model.vocab_size)
    for name, i in (('[Fork]', self.ids.fork), ('[Child]', self.ids.child)) + tuple(
        ('stop', s) for s in self.ids.stop):
      if not 0 <= i < vocab:
        raise ValueError(f'{name} id {i} is outside the model vocabulary [0, {vocab}); set '
                         f'--config.model.vocab_size to the tokenizer size')
    self.params = params
    self.mesh = mesh
    self.shards = data_shards.num_shards(mesh)
    # Params placed on the mesh drive the partitioning within a shard. (No tracing under
    # `jax.set_mesh`: there the model's logical constraints fail in Flax's param shape check.)
    self.fns: EngineFunctions = compiled_functions(
        ml_collections.FrozenConfigDict(config.model), self.caps, self.ids, apar,
        self.attention_impl, speculative.spec if speculative else None, self.shards,
        mesh if mesh is not None and mesh.size > 1 else None, bool(eng.get('row_buckets', True)))
    self.last_stats: dict[str, int] = {}
    # [2, K, topk] (tried, kept) drafted nodes per tree (level, rank) since the engine was built (or
    # reset), as of the last run; None without a drafter (`speculative.acceptance_tally.rates`)
    self.acceptance_tally: Optional[np.ndarray] = None
    self._state: Optional[EngineState] = None  # kept between calls: the KV pools are reused
    self._running: Optional[Scheduler] = None  # the scheduler of the run in progress

  @classmethod
  def from_runtime(cls, runtime: Any, mode: str = 'ar') -> 'Engine':
    """An engine over a loaded `apar_jax.runtime.Runtime` (its params, tokenizer and mesh); a mode
    with a trained drafter: `apar_jax.engine.setup.engine_for(runtime, mode)`."""
    return cls(runtime.config, mode, params=runtime.params, tokenizer=runtime.tokenizer,
               mesh=runtime.mesh)

  # ---- validation -------------------------------------------------------------------------------
  def prepare(self, index: int, request: Request) -> PreparedRequest:
    """Resolves defaults, tokenizes and checks one request; raises ValueError with the reason."""
    caps = self.caps
    if request.token_ids is not None:
      ids = tuple(int(t) for t in request.token_ids)
    elif request.prompt is not None:
      ids = tuple(self._encode(request.prompt))
    else:
      raise ValueError(f'request {index}: give a prompt or token_ids')
    if not ids:
      raise ValueError(f'request {index}: the prompt is empty (0 tokens)')
    vocab = int(self.config.model.vocab_size)
    bad = [t for t in ids if not 0 <= t < vocab]
    if bad:
      raise ValueError(f'request {index}: token ids {bad[:5]} are outside the vocabulary '
                       f'[0, {vocab})')
    max_new = request.max_new_tokens
    if max_new is None:
      max_new = min(int(self.config.generate.max_new_tokens), caps.max_new_tokens)
    check_settings(max_new, request.temperature, request.top_k, request.top_p, caps.max_new_tokens)
    check_repeat_settings(request.repetition_penalty, request.no_repeat_ngram)
    if self._has_drafter and (request.repetition_penalty != 1.0 or request.no_repeat_ngram):
      raise ValueError(f'request {index}: repetition_penalty / no_repeat_ngram change the '
                       f'distribution a drafter is verified against; mode {self.mode!r} does not '
                       'take them (use ar or apar)')
    if not 0 <= request.arrival_s < float('inf'):
      raise ValueError(f'request {index}: arrival_s must be finite and >= 0, got '
                       f'{request.arrival_s}')
    if request.arrival_s > 0 and jax.process_count() > 1:
      raise ValueError(f'request {index}: timed arrivals (arrival_s > 0) need a single process: '
                       'admission would follow each process\'s clock, and every process of a job '
                       'must make the same device calls')
    need = len(ids) - 1 + max_new
    if need > caps.slot_capacity:
      raise CapacityError('context', (
          f'request {index}: prompt ({len(ids)} tokens) + max_new_tokens ({max_new}) needs '
          f'{need} positions but a slot holds {caps.slot_capacity} (pages_per_slot x page_size); '
          'shorten the prompt, lower max_new_tokens or raise --config.engine.pages_per_slot'))
    if need > int(self.config.model.max_position):
      raise CapacityError('context', (
          f'request {index}: prompt + max_new_tokens exceeds the model max_position '
          f'{self.config.model.max_position}'))
    pages = pages_for(need + caps.slack, caps.page_size)
    if pages > caps.num_pages:
      window = f' (+ {caps.slack} positions of verification window)' if caps.slack else ''
      raise CapacityError('pages', (
          f'request {index}: needs {pages} KV pages{window} but the pool has {caps.num_pages}; '
          'raise --config.engine.num_pages'))
    return PreparedRequest(index, request.prompt, ids, int(max_new), float(request.temperature),
                           int(request.top_k), float(request.top_p), int(request.seed),
                           float(request.arrival_s), float(request.repetition_penalty),
                           int(request.no_repeat_ngram), bool(request.penalize_symbols))

  def _encode(self, prompt: str) -> list[int]:
    if self.tokenizer is None:
      raise ValueError('this engine has no tokenizer: pass token_ids')
    from apar_jax.tokenization import encode_user_prompt
    return encode_user_prompt(self.tokenizer, prompt, self.config.tokenizer)

  # ---- running ----------------------------------------------------------------------------------
  def _take_state(self) -> EngineState:
    """An empty device state `[D, ...]`: the previous run's, reset, or a new one (placed by
    `data_shards.state_shardings`)."""
    state, self._state = self._state, None
    if state is not None:
      return self.fns.reset(state)
    return self.fns.init()  # built on the devices, never on the host

  def stream(self, requests: Sequence[Request], *, stream_tokens: bool = True,
             chunk_steps: Optional[int] = None, chunk_events: bool = False) -> Iterator[Any]:
    """Yields `TokensEvent`s after each chunk (if `stream_tokens`), a `DoneEvent` per request and a
    `ChunkEvent` per chunk (if `chunk_events`)."""
    prepared = [self.prepare(i, r) for i, r in enumerate(requests)]
    if not prepared:
      return
    yield from self._run(TimedQueue(prepared), stream_tokens, chunk_steps, chunk_events)

  def serve(self, feed: LiveFeed, *, stream_tokens: bool = True, chunk_steps: Optional[int] = None,
            chunk_events: bool = False) -> Iterator[Any]:
    """Like `stream`, for requests submitted to `feed` (already `prepare`d, each with its own
    `index`) while the engine runs; returns after `feed.close()` once every admitted request is done.
    Cancelled requests end with `DoneEvent(cancelled=True)`."""
    yield from self._run(feed, stream_tokens, chunk_steps, chunk_events)

  def _run(self, feed: RequestFeed, stream_tokens: bool, chunk_steps: Optional[int],
           chunk_events: bool) -> Iterator[Any]:
    device_params = (self.params if self.speculative is None else
                     (self.params, self.speculative.params))
    scheduler = Scheduler(self.fns, device_params, self._take_state(), self.caps, self._result,
                          chunk_steps or self.caps.chunk_steps, self.shards, self.draft_control)
    self._running = scheduler
    try:
      yield from scheduler.run(feed, stream_tokens, chunk_events)
    finally:
      self._running = None
    self.last_stats = scheduler.final_stats()
    self.acceptance_tally = scheduler.acceptance_tally()
    self._state = scheduler.state

  def page_stats(self) -> dict[str, int]:
    """The page accounting of `last_stats` (free pages, min/max refcount) as of the latest chunk
    of the run in progress (safe to call from another thread: it reads the last host summary), or
    of the last run."""
    running = self._running
    if running is not None and running.has_summary():
      return running.final_stats()
    return dict(self.last_stats)

  def generate(self, requests: Sequence[Request], *,
               chunk_steps: Optional[int] = None) -> list[Result]:
    """Decodes every request; results in input order."""
    results: list[Optional[Result]] = [None] * len(requests)
    for event in self.stream(requests, stream_tokens=False, chunk_steps=chunk_steps):
      if isinstance(event, DoneEvent):
        results[event.index] = event.result
    return results  # type: ignore[return-value]

  def warmup(self) -> None:
    """Compiles every device function with a throwaway two-token request (then `cancel` and the
    chunk of every row bucket on the idle state it leaves: no-ops)."""
    self.generate([Request(token_ids=[self.ids.stop[0]] * 2, max_new_tokens=1)])
    none = jnp.zeros((self.shards, self.caps.max_requests), bool)
    self._state = self.fns.cancel(self._state, none)
    params = self.params if self.speculative is None else (self.params, self.speculative.params)
    drained = jnp.zeros((self.shards, self.caps.max_slots), bool)  # as the scheduler passes it
    for rows in self.fns.buckets:  # every row bucket's chunk: zero steps on the idle state
      self._state = self.fns.run_chunk(params, self._state, drained, jnp.int32(0), rows=rows,
                                       draft=True)  # as the scheduler calls it (same cache key)
      if rows in self.fns.drafting_buckets and self.draft_control is not None:  # and undrafted
        self._state = self.fns.run_chunk(params, self._state, drained, jnp.int32(0), rows=rows,
                                         draft=False)

  def _result(self, req: PreparedRequest, branches: list[Branch], counters: dict[str, int],
              wall: float) -> Result:
    ids = reassemble(branches, (self.ids.fork, self.ids.child), self.ids.stop)
    text = self.tokenizer.decode(ids) if self.tokenizer is not None else ''
    sampled = sum(len(b.tokens) for b in branches)  # all branches, [Fork] and stops included
    return Result(
        prompt=req.prompt, mode=self.mode, text=text, token_ids=ids, num_generated_tokens=len(ids),
        decode_steps=counters['decode_steps'], wall_time_s=wall, forks=counters['forks'],
        max_live_branches=counters['max_live'], peak_kv_pages=counters['peak_pages'],
        mean_accepted_tokens=sampled / max(counters.get('branch_steps', sampled), 1),
        attended_kv_tokens=counters['attended'],
        refused_forks=counters['refused_forks'],
        sampled_tokens=sampled, prompt_tokens=len(req.ids),
        branches=sorted(branches, key=lambda b: b.branch_id))


def _ids_from_tokenizer(tokenizer: Any) -> ControlIds:
  if tokenizer.fork_id is None or tokenizer.child_id is None:
    raise ValueError('the tokenizer has no [Fork]/[Child] tokens; load it with the APAR tokens')
  texts = [tokenizer.decode([i], skip_special=False) for i in range(tokenizer.vocab_size)]
  return ControlIds(int(tokenizer.fork_id), int(tokenizer.child_id),
                    tuple(int(i) for i in tokenizer.stop_ids), letterless_ids(texts))
