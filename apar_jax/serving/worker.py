"""One engine in one background thread, shared by every HTTP request (continuous batching).

    worker = EngineWorker(engine, max_waiting=64)
    worker.start()                       # compiles in the background; `worker.ready` once done
    ticket = worker.submit(Request(...), on_event)   # on_event(event) runs in the engine thread
    worker.cancel(ticket)                # client gone: its branches end at the next chunk
    worker.stop()

The engine thread runs `Engine.serve` over a `LiveFeed`: requests submitted by the server are
admitted between chunks, each one's `TokensEvent`s and final `DoneEvent` go to its callback. If the
engine fails, every request in flight gets an `EngineFailed` event and the worker stops taking work.
"""

import dataclasses
import itertools
import sys
import threading
import time
import traceback
from typing import Any, Callable, Optional

from apar_jax.engine import ChunkEvent, DoneEvent, Engine, Request, TokensEvent
from apar_jax.engine.host.request_feed import LiveFeed
from apar_jax.serving.metrics import ServerMetrics


@dataclasses.dataclass(frozen=True)
class EngineFailed:
  """The engine thread died; `message` says why."""
  message: str


class NotReady(RuntimeError):
  """The engine is still compiling (or has failed)."""


@dataclasses.dataclass
class _Session:
  on_event: Callable[[Any], None]
  arrived: float  # perf_counter at submit
  first_token: Optional[float] = None


class EngineWorker:
  """Owns the engine, its live feed and the thread that decodes."""

  def __init__(self, engine: Engine, max_waiting: int = 64,
               metrics: Optional[ServerMetrics] = None):
    self.engine = engine
    self.metrics = metrics or ServerMetrics(engine.caps.num_pages * engine.shards)
    self.feed = LiveFeed(max_waiting)
    self._ids = itertools.count()
    self._sessions: dict[int, _Session] = {}
    self._lock = threading.Lock()
    self._thread = threading.Thread(target=self._main, name='apar-engine', daemon=True)
    self._ready = threading.Event()
    self.failure: Optional[str] = None
    self.compile_s: Optional[float] = None

  # ---- life cycle -------------------------------------------------------------------------------
  def start(self) -> None:
    self._thread.start()

  @property
  def ready(self) -> bool:
    return self._ready.is_set() and self.failure is None

  def wait_ready(self, timeout: Optional[float] = None) -> bool:
    self._ready.wait(timeout)
    return self.ready

  def stop(self, timeout: float = 60.0) -> None:
    """Cancels what is in flight and ends the engine thread."""
    with self._lock:
      indices = list(self._sessions)
    for i in indices:
      self.feed.cancel(i)
    self.feed.close()
    if self._thread.is_alive():
      self._thread.join(timeout)

  # ---- requests ---------------------------------------------------------------------------------
  def prepare(self, request: Request) -> Any:
    """Validates and tokenizes (ValueError / CapacityError with the reason) in the caller's thread."""
    return self.engine.prepare(next(self._ids), request)

  def submit(self, prepared: Any, on_event: Callable[[Any], None]) -> int:
    """Queues a prepared request (`LiveFeed.submit`: QueueFull when the queue is full); returns its
    ticket. `on_event` is called from the engine thread."""
    if not self.ready:
      raise NotReady(self.failure or 'the engine is still compiling')
    with self._lock:
      self._sessions[prepared.index] = _Session(on_event, time.perf_counter())
    try:
      self.feed.submit(prepared)
    except Exception:
      with self._lock:
        self._sessions.pop(prepared.index, None)
      raise
    self.metrics.queue_depth.set(self.feed.waiting())
    return prepared.index

  def cancel(self, ticket: int) -> None:
    """Drops a waiting request, or ends an admitted one at the next chunk (its pages freed)."""
    if self.feed.cancel(ticket):  # never admitted: nothing will report it
      with self._lock:
        self._sessions.pop(ticket, None)
      self.metrics.cancelled.inc()
      self.metrics.queue_depth.set(self.feed.waiting())

  # ---- the engine thread ------------------------------------------------------------------------
  def _main(self) -> None:
    try:
      t0 = time.perf_counter()
      self.engine.warmup()
      self.compile_s = time.perf_counter() - t0
      self._ready.set()
      steps = 0
      for event in self.engine.serve(self.feed, stream_tokens=True, chunk_events=True):
        if isinstance(event, ChunkEvent):
          self.metrics.decode_steps.inc(event.steps - steps)
          steps = event.steps
          self.metrics.kv_pages_in_use.set(event.pages_in_use)
          self.metrics.live_branches.set(event.live_branches)
          self.metrics.in_flight.set(event.requests_in_flight)
          self.metrics.queue_depth.set(event.requests_waiting)
        elif isinstance(event, TokensEvent):
          session = self._session(event.index)
          if session is not None:
            if session.first_token is None:
              session.first_token = time.perf_counter()
              self.metrics.ttft.observe(session.first_token - session.arrived)
            session.on_event(event)
        elif isinstance(event, DoneEvent):
          self._done(event)
    except BaseException as e:  # noqa: BLE001  (reported to every waiting client, then logged)
      self.failure = f'the engine failed: {type(e).__name__}: {e}'
      traceback.print_exc(file=sys.stderr)
      self.feed.close()  # later submissions are refused (503), not left waiting
      with self._lock:
        sessions, self._sessions = list(self._sessions.values()), {}
      for s in sessions:
        s.on_event(EngineFailed(self.failure))
    finally:
      self._ready.set()

  def _session(self, index: int) -> Optional[_Session]:
    with self._lock:
      return self._sessions.get(index)

  def _done(self, event: DoneEvent) -> None:
    with self._lock:
      session = self._sessions.pop(event.index, None)
    r, m = event.result, self.metrics
    m.in_flight.dec()  # the chunk's gauge counted it
    if event.cancelled:
      m.cancelled.inc()
    else:
      m.prompt_tokens.inc(r.prompt_tokens)
      m.generated_tokens.inc(r.num_generated_tokens)
      m.request_steps.inc(r.decode_steps)
      m.forks.inc(r.forks)
      if session is not None:
        m.latency.observe(time.perf_counter() - session.arrived)
    if session is not None:
      session.on_event(event)
