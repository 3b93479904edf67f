"""One HTTP request's answer: submitted to the engine worker, read back as text pieces.

`AnswerSession.pieces()` yields the answer's text as it becomes final (see `engine.stable_text`) and ends
with a `Finished` holding the engine's `Result`; a stop sequence cancels the request on the engine
(its pages are freed at the next chunk) and the answer ends before it. `close()` cancels whatever is
still decoding: called when the client goes away.
"""

import asyncio
import dataclasses
from typing import Any, AsyncIterator, Sequence, Union

from apar_jax.engine import DoneEvent, Result, TokensEvent
from apar_jax.engine.host.stable_text import AnswerText
from apar_jax.serving.worker import EngineFailed, EngineWorker


@dataclasses.dataclass(frozen=True)
class Finished:
  result: Result
  finish_reason: str  # 'stop' (stop token or sequence) or 'length' (token budget)
  stopped_by_sequence: bool


class EngineError(RuntimeError):
  """The engine failed while this request was in flight."""


class AnswerSession:
  """Submits a prepared request and turns its engine events into text pieces."""

  def __init__(self, worker: EngineWorker, prepared: Any, stop_sequences: Sequence[str]):
    self._worker = worker
    ids = worker.engine.ids
    self._stop_ids = frozenset(ids.stop)
    self._text = AnswerText(worker.engine.tokenizer, ids.fork, ids.child, ids.stop, stop_sequences)
    self._events: asyncio.Queue = asyncio.Queue()
    self._loop = asyncio.get_running_loop()
    self._finished = False
    self.ticket = worker.submit(prepared, self._deliver)

  def _deliver(self, event: Any) -> None:
    """Called in the engine thread: hands the event to the request's event loop."""
    try:
      self._loop.call_soon_threadsafe(self._events.put_nowait, event)
    except RuntimeError:  # the loop is closed (server shutting down): nobody is listening
      pass

  async def pieces(self) -> AsyncIterator[Union[str, Finished]]:
    """Text pieces ('' never yielded), then one `Finished`; raises EngineError if the engine died."""
    cancelled = False
    while True:
      event = await self._events.get()
      if isinstance(event, TokensEvent):
        piece = self._text.add(event)
        if piece:
          yield piece
        if self._text.stopped and not cancelled:
          self._worker.cancel(self.ticket)
          cancelled = True
      elif isinstance(event, DoneEvent):
        self._finished = True
        piece = self._text.finish(event.result)
        if piece:
          yield piece
        ended = bool(event.result.token_ids) and event.result.token_ids[-1] in self._stop_ids
        yield Finished(event.result, 'stop' if ended or self._text.stopped else 'length',
                       self._text.stopped)
        return
      elif isinstance(event, EngineFailed):
        self._finished = True
        raise EngineError(event.message)

  def close(self) -> None:
    """Cancels the request if it has not finished (client gone)."""
    if not self._finished:
      self._finished = True
      self._worker.cancel(self.ticket)
