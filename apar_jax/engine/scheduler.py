"""The host side of continuous batching: admit, run a chunk, drain, repeat.

Between chunks the host reads one small summary of the state (slot status, outputs, counters),
drains finished branches, completes requests whose branches have all ended, and admits waiting
requests into free slots when the free pages cover every live branch's reserve plus the newcomer's
worst case. No device->host transfer happens inside a chunk. A request is not admitted before its
`arrival_s` (serving benchmarks); an idle engine sleeps until the next arrival.
"""

import collections
import dataclasses
import time
from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.engine.loop import EngineFunctions
from apar_jax.engine.requests import (ChunkEvent, DoneEvent, PreparedRequest, Result,
                                      TokensEvent)
from apar_jax.engine.state import (COPYING, DONE, FREE, LIVE, PENDING, Capacities, EngineState,
                                   is_active, pages_for)
from apar_jax.engine.token_choice import root_key_data
from apar_jax.engine.tree_reassembly import Branch


@dataclasses.dataclass
class _InFlight:
  """Host view of one admitted request."""
  req: PreparedRequest
  branches: list[Branch] = dataclasses.field(default_factory=list)
  emitted: dict[int, int] = dataclasses.field(default_factory=dict)  # branch id -> tokens streamed


def _summary(state: EngineState) -> dict[str, np.ndarray]:
  """The few arrays the host needs after a chunk, in one transfer (copied: the state is donated)."""
  sl, rq = state.slots, state.requests
  arrays = dict(status=sl.status, request=sl.request, branch=sl.branch,
                parent_branch=sl.parent_branch, fork_point=sl.fork_point, depth=sl.depth,
                tokens=sl.tokens, num_out=sl.num_out, max_len=sl.max_len, num_pages=sl.num_pages,
                length=sl.length, first_step=sl.first_step, last_step=sl.last_step,
                live_branches=rq.live_branches, decode_steps=rq.decode_steps, forks=rq.forks,
                refused_forks=rq.refused_forks, max_live=rq.max_live, peak_pages=rq.peak_pages,
                attended=rq.attended, branch_steps=rq.branch_steps, num_free=state.pool.num_free,
                steps=state.steps, global_peak=state.peak_pages)
  return {k: np.array(v) for k, v in jax.device_get(arrays).items()}


def available_pages(summary: dict[str, np.ndarray], page_size: int) -> int:
  """Free pages not reserved by unfinished branches (mirrors `state.outstanding_pages`)."""
  status = summary['status']
  waiting = ((status == PENDING) | (status == COPYING)) & (summary['length'] % page_size != 0)
  need = pages_for(summary['max_len'], page_size) - summary['num_pages'] + waiting
  active = np.asarray(is_active(status))
  return int(summary['num_free']) - int(np.sum(np.where(active, np.maximum(need, 0), 0)))


class Scheduler:
  """Runs a list of prepared requests to completion on one engine state."""

  def __init__(self, fns: EngineFunctions, params: Any, state: EngineState, caps: Capacities,
               finish: Callable[[PreparedRequest, list[Branch], dict[str, int], float], Result],
               chunk_steps: int):
    self.fns, self.params, self.state, self.caps = fns, params, state, caps
    self.finish = finish
    self.chunk_steps = chunk_steps
    self.stats: dict[str, int] = {'chunks': 0, 'steps': 0, 'peak_kv_pages': 0}

  def final_stats(self) -> dict[str, int]:
    """Run counters plus the page accounting after the run (all pages free, no negative count)."""
    pool = self.state.pool
    refcount, num_free = jax.device_get((pool.refcount, pool.num_free))
    return dict(self.stats, free_pages_end=int(num_free), min_refcount_end=int(np.min(refcount)),
                max_refcount_end=int(np.max(refcount)), num_pages=self.caps.num_pages)

  def _admit(self, req: PreparedRequest, slot: int, r: int) -> None:
    caps, ids = self.caps, req.ids
    L = len(ids)
    self.state = self.fns.admit(
        self.state, jnp.int32(slot), jnp.int32(r), jnp.int32(L), jnp.int32(ids[-1]),
        jnp.int32(req.max_new), jnp.float32(req.temperature), jnp.int32(req.top_k),
        jnp.float32(req.top_p), root_key_data(req.seed))
    c = caps.prefill_chunk
    for start in range(0, L - 1, c):
      chunk = np.zeros((c,), np.int32)
      part = ids[start:min(start + c, L - 1)]
      chunk[:len(part)] = part
      self.state = self.fns.prefill_chunk(self.params, self.state, jnp.int32(slot),
                                          jnp.asarray(chunk), jnp.int32(start))

  def run(self, requests: list[PreparedRequest], stream: bool,
          chunk_events: bool = False) -> Iterator[Any]:
    """Yields TokensEvent (when `stream`), DoneEvent for every request and, when `chunk_events`, a
    ChunkEvent after each chunk (before its TokensEvents). Admission is FIFO by `arrival_s`."""
    caps = self.caps
    queue = collections.deque(sorted(requests, key=lambda r: r.arrival_s))  # stable
    free_slots = list(range(caps.max_slots))
    free_reqs = list(range(caps.max_requests))
    avail = caps.num_pages
    flight: dict[int, _InFlight] = {}
    drained = np.zeros((caps.max_slots,), bool)
    t0 = time.perf_counter()
    arrived = lambda: bool(queue) and queue[0].arrival_s <= time.perf_counter() - t0  # noqa: E731
    while queue or flight:
      while free_slots and free_reqs and arrived():
        req = queue[0]
        need = pages_for(len(req.ids) - 1 + req.max_new + caps.slack, caps.page_size)
        if need > avail:
          break
        queue.popleft()
        slot, r = free_slots.pop(0), free_reqs.pop(0)
        self._admit(req, slot, r)
        drained[slot] = False
        avail -= need
        flight[r] = _InFlight(req)
      if not flight and queue and not arrived():
        time.sleep(max(0.0, queue[0].arrival_s - (time.perf_counter() - t0)))
        continue
      if not flight:
        raise RuntimeError('no request could be admitted although the engine is idle; the '
                           'capacity checks should have refused it')
      # A host copy that nobody mutates: `jnp.array(x, copy=True)` makes no host copy of a numpy
      # input (it goes through np.asarray), and the transfer / the asynchronously dispatched chunk
      # may read the buffer after this call returns, so resetting `drained` below raced with it
      # (finished slots left undrained: a KeyError in `_drain`; seen under load).
      self.state = self.fns.run_chunk(self.params, self.state, jnp.asarray(drained.copy()),
                                      jnp.int32(self.chunk_steps))
      drained[:] = False
      summary = _summary(self.state)
      self.stats['chunks'] += 1
      self.stats['steps'] = int(summary['steps'])
      self.stats['peak_kv_pages'] = int(summary['global_peak'])
      if chunk_events:
        yield ChunkEvent(time.perf_counter() - t0, int(summary['steps']),
                         caps.num_pages - int(summary['num_free']),
                         int(np.sum(summary['status'] == LIVE)), len(flight), len(queue))
      yield from self._drain(summary, flight, drained, stream)
      for r in [r for r in flight if summary['live_branches'][r] == 0]:
        inflight = flight.pop(r)
        free_reqs.append(r)
        counters = {k: int(summary[k][r]) for k in ('decode_steps', 'forks', 'refused_forks',
                                                    'max_live', 'peak_pages', 'attended',
                                                    'branch_steps')}
        result = self.finish(inflight.req, inflight.branches, counters, time.perf_counter() - t0)
        yield DoneEvent(inflight.req.index, result)
      free_slots = sorted(set(np.nonzero(summary['status'] == FREE)[0].tolist())
                          | set(np.nonzero(drained)[0].tolist()))
      avail = available_pages(summary, caps.page_size)

  def _drain(self, summary: dict[str, np.ndarray], flight: dict[int, _InFlight],
             drained: np.ndarray, stream: bool) -> Iterator[TokensEvent]:
    """Collects DONE branches (marking their slots drained) and streams new tokens."""
    for s in range(self.caps.max_slots):
      status = summary['status'][s]
      if status not in (LIVE, DONE):
        continue
      inflight = flight[int(summary['request'][s])]
      b_id, n = int(summary['branch'][s]), int(summary['num_out'][s])
      tokens = tuple(int(t) for t in summary['tokens'][s, :n])
      if stream and n > inflight.emitted.get(b_id, 0):
        yield TokensEvent(inflight.req.index, b_id, int(summary['parent_branch'][s]),
                          int(summary['fork_point'][s]), tokens[inflight.emitted.get(b_id, 0):])
        inflight.emitted[b_id] = n
      if status == DONE:
        inflight.branches.append(Branch(b_id, int(summary['parent_branch'][s]),
                                        int(summary['fork_point'][s]), int(summary['depth'][s]),
                                        tokens, int(summary['first_step'][s]),
                                        int(summary['last_step'][s])))
        drained[s] = True
