"""Where the scheduler's requests come from: a fixed timed list, or a live feed fed by other threads.

`Scheduler.run` pulls from a feed between chunks: the head request once it has arrived, the indices
cancelled since the last look, and, when the engine is idle, it waits on the feed. `TimedQueue`
replays a list with `arrival_s` offsets (`Engine.stream`, the serving benchmark); `LiveFeed` takes
requests from a server's threads while the engine runs (`Engine.serve`).
"""

import collections
import threading
import time
from typing import Iterable, Optional, Protocol

from apar_jax.engine.host.requests import PreparedRequest


class QueueFull(RuntimeError):
  """The live feed holds `max_waiting` requests already: try again later."""


class RequestFeed(Protocol):
  """What the scheduler reads between chunks. `now_s`: seconds since the scheduler started."""

  def head(self, now_s: float) -> Optional[PreparedRequest]:
    """The next request to admit if it has arrived (FIFO), else None."""

  def pop(self) -> PreparedRequest:
    """Removes and returns the head (after `head` returned it)."""

  def waiting(self) -> int:
    """Requests not admitted yet."""

  def exhausted(self) -> bool:
    """True once no request is waiting and none will come."""

  def take_cancelled(self) -> set[int]:
    """Indices of admitted requests cancelled since the last call."""

  def wait(self, now_s: float) -> None:
    """Blocks an idle engine until a request may be admitted (or the feed is exhausted)."""


class TimedQueue:
  """A fixed list of requests, each admitted no earlier than its `arrival_s`."""

  def __init__(self, requests: Iterable[PreparedRequest]):
    self._queue = collections.deque(sorted(requests, key=lambda r: r.arrival_s))  # stable

  def head(self, now_s: float) -> Optional[PreparedRequest]:
    return self._queue[0] if self._queue and self._queue[0].arrival_s <= now_s else None

  def pop(self) -> PreparedRequest:
    return self._queue.popleft()

  def waiting(self) -> int:
    return len(self._queue)

  def exhausted(self) -> bool:
    return not self._queue

  def take_cancelled(self) -> set[int]:
    return set()

  def wait(self, now_s: float) -> None:
    if self._queue:
      time.sleep(max(0.0, self._queue[0].arrival_s - now_s))


class LiveFeed:
  """A thread-safe FIFO that server threads `submit` to and `cancel` from while the engine runs.

  At most `max_waiting` requests wait for admission; `submit` raises `QueueFull` beyond that.
  `close()` takes no more requests; the engine finishes the admitted ones and returns.
  """

  def __init__(self, max_waiting: int):
    if max_waiting < 1:
      raise ValueError(f'max_waiting must be >= 1, got {max_waiting}')
    self.max_waiting = max_waiting
    self._queue: collections.deque[PreparedRequest] = collections.deque()
    self._cancelled: set[int] = set()
    self._closed = False
    self._changed = threading.Condition()

  def submit(self, request: PreparedRequest) -> None:
    with self._changed:
      if self._closed:
        raise RuntimeError('the engine is shutting down: it takes no new requests')
      if len(self._queue) >= self.max_waiting:
        raise QueueFull(f'{len(self._queue)} requests are already waiting for the engine')
      self._queue.append(request)
      self._changed.notify_all()

  def cancel(self, index: int) -> bool:
    """Cancels request `index`: True if it was still waiting (dropped, it never runs); otherwise the
    engine ends its branches before its next chunk (a finished index is ignored)."""
    with self._changed:
      for req in self._queue:
        if req.index == index:
          self._queue.remove(req)
          return True
      self._cancelled.add(index)
      self._changed.notify_all()
      return False

  def close(self) -> None:
    with self._changed:
      self._closed = True
      self._changed.notify_all()

  def head(self, now_s: float) -> Optional[PreparedRequest]:
    with self._changed:
      return self._queue[0] if self._queue and self._queue[0].arrival_s <= now_s else None

  def pop(self) -> PreparedRequest:
    with self._changed:
      return self._queue.popleft()

  def waiting(self) -> int:
    with self._changed:
      return len(self._queue)

  def exhausted(self) -> bool:
    with self._changed:
      return self._closed and not self._queue

  def take_cancelled(self) -> set[int]:
    with self._changed:
      cancelled, self._cancelled = self._cancelled, set()
      return cancelled

  def wait(self, now_s: float) -> None:
    del now_s  # live requests arrive when submitted
    with self._changed:
      self._changed.wait_for(lambda: self._queue or self._closed)
