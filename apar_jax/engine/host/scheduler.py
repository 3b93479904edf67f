"""The host side of continuous batching: admit, run a chunk, drain, repeat.

Between chunks the host reads one small summary of the state (slot status, outputs, counters),
drains finished branches, completes requests whose branches have all ended, and admits waiting
requests into free slots when the free pages cover every live branch's reserve plus the newcomer's
worst case. No device->host transfer happens inside a chunk. A request is not admitted before its
`arrival_s` (serving benchmarks); an idle engine waits on its feed (`request_feed`) until the next
arrival. Cancelled requests have their branches ended between chunks (`cancel`). Each chunk runs
on the smallest row bucket that holds every shard's unfinished branches (`row_buckets`); a fork that
needs a wider one ends the chunk early. With several data
shards (`data_shards`) each request goes to one shard; one admission round admits at most one request
per shard, and prefills them side by side.
"""

import dataclasses
import time
from typing import Any, Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.engine.device import row_buckets
from apar_jax.engine.host.draft_control import DraftControl
from apar_jax.engine.device.loop import EngineFunctions
from apar_jax.engine.host.request_feed import RequestFeed
from apar_jax.engine.host.requests import (ChunkEvent, DoneEvent, PreparedRequest, Result,
                                           TokensEvent)
from apar_jax.engine.device.state import (COPYING, DONE, FREE, LIVE, PENDING, Capacities,
                                          EngineState, is_active, pages_for)
from apar_jax.engine.device.token_choice import root_key_data
from apar_jax.engine.host.tree_reassembly import Branch


@dataclasses.dataclass
class _InFlight:
  """Host view of one admitted request."""
  req: PreparedRequest
  branches: list[Branch] = dataclasses.field(default_factory=list)
  emitted: dict[int, int] = dataclasses.field(default_factory=dict)  # branch id -> tokens streamed
  cancelled: bool = False  # its branches were ended by `Scheduler._cancel`


def read_summary(fns: EngineFunctions, state: EngineState, caps: Capacities) -> dict[str, np.ndarray]:
  """The arrays the host needs after a chunk, in one transfer, flattened over the data shards.

  Slot arrays become `[D * S]` (global slot g = shard * S + slot), request arrays `[D * R]`, and
  `request` holds global request indices (shard * R + r); pool counters stay per shard `[D]`.
  """
  arrays = {k: np.array(v) for k, v in jax.device_get(fns.summary(state)).items()}
  shards = arrays['num_free'].shape[0]
  for name, value in arrays.items():
    if value.ndim >= 2:  # [D, S, ...] or [D, R]
      arrays[name] = value.reshape((-1,) + value.shape[2:])
  offsets = np.repeat(np.arange(shards) * caps.max_requests, caps.max_slots)
  arrays['request'] = arrays['request'] + offsets
  return arrays


def available_pages(summary: dict[str, np.ndarray], caps: Capacities) -> np.ndarray:
  """[D] free pages of each shard not reserved by its unfinished branches (mirrors
  `state.outstanding_pages`)."""
  status = summary['status']
  waiting = ((status == PENDING) | (status == COPYING)) & (summary['length'] % caps.page_size != 0)
  need = pages_for(summary['max_len'], caps.page_size) - summary['num_pages'] + waiting
  active = np.asarray(is_active(status))
  reserved = np.where(active, np.maximum(need, 0), 0).reshape(-1, caps.max_slots).sum(axis=1)
  return summary['num_free'] - reserved


class Scheduler:
  """Runs a list of prepared requests to completion on one engine state of `shards` data shards.

  Slots and request indices are global on the host (shard * S + slot, shard * R + r); each request
  lives in one shard, chosen at admission (the one with the most unreserved pages).
  """

  def __init__(self, fns: EngineFunctions, params: Any, state: EngineState, caps: Capacities,
               finish: Callable[[PreparedRequest, list[Branch], dict[str, int], float], Result],
               chunk_steps: int, shards: int = 1, control: Optional[DraftControl] = None):
    """`control`: whether each chunk of a drafting bucket drafts (`draft_control`; None: always)."""
    self.fns, self.params, self.state, self.caps = fns, params, state, caps
    self.control = control
    self.finish = finish
    self.chunk_steps = chunk_steps
    self.shards = shards
    self.stats: dict[str, int] = {'chunks': 0, 'steps': 0, 'peak_kv_pages': 0,
                                  'data_shards': shards}
    self._last: dict[str, np.ndarray] | None = None  # the latest summary

  def has_summary(self) -> bool:
    """Whether a chunk has run (`final_stats` then reads its summary, not the device)."""
    return self._last is not None

  def _summary(self) -> dict[str, np.ndarray]:
    """The latest chunk's summary, or one read from the device if no chunk has run yet."""
    return self._last if self._last is not None else read_summary(self.fns, self.state, self.caps)

  def final_stats(self) -> dict[str, int]:
    """Run counters plus the page accounting after the run (all pages free, no negative count),
    summed over the shards."""
    summary = self._summary()
    control = self.control.stats() if self.control is not None else {}
    if 'by_source' in summary:  # token recycling, since the engine was built: accepted drafts
      context, table = np.asarray(summary['by_source']).reshape(-1, 2).sum(axis=0)
      control = dict(control, recycled_accepted_context=int(context),
                     recycled_accepted_table=int(table))
    return dict(self.stats, **control, free_pages_end=int(np.sum(summary['num_free'])),
                min_refcount_end=int(np.min(summary['min_refcount'])),
                max_refcount_end=int(np.max(summary['max_refcount'])),
                num_pages=self.caps.num_pages * self.shards)

  def acceptance_tally(self) -> np.ndarray | None:
    """[2, K, topk] drafted nodes (tried, kept) per tree (level, rank) since the state was built,
    summed over the shards (`speculative.acceptance_tally`); None without a drafter."""
    summary = self._summary()
    if 'tally' not in summary:
      return None
    tally = np.asarray(summary['tally'])
    return tally.reshape((-1,) + tally.shape[-3:]).sum(axis=0)

  def _admit(self, picks: dict[int, tuple[PreparedRequest, int, int]]) -> None:
    """Admits and prefills one request per picked shard: {shard: (request, slot, r)} (local slot and
    request indices), in one `admit` call and as many `prefill_chunk` calls as the longest prompt
    needs (shards whose prompt is done sit those out)."""
    d, c = self.shards, self.caps.prefill_chunk
    active = np.zeros((d,), bool)
    ints = {k: np.zeros((d,), np.int32) for k in ('slot', 'r', 'length', 'last', 'max_new',
                                                   'top_k', 'no_repeat_ngram')}
    floats = {k: np.zeros((d,), np.float32) for k in ('temperature', 'top_p')}
    floats['repetition_penalty'] = np.ones((d,), np.float32)
    penalize_symbols = np.ones((d,), bool)
    keys = np.zeros((d, 2), np.uint32)
    for shard, (req, slot, r) in picks.items():
      active[shard] = True
      for k, v in (('slot', slot), ('r', r), ('length', len(req.ids)), ('last', req.ids[-1]),
                   ('max_new', req.max_new), ('top_k', req.top_k),
                   ('no_repeat_ngram', req.no_repeat_ngram)):
        ints[k][shard] = v
      for k in floats:
        floats[k][shard] = getattr(req, k)
      penalize_symbols[shard] = req.penalize_symbols
      keys[shard] = np.asarray(root_key_data(req.seed))
    self.state = self.fns.admit(
        self.state, active, ints['slot'], ints['r'], ints['length'], ints['last'],
        ints['max_new'], floats['temperature'], ints['top_k'], floats['top_p'],
        floats['repetition_penalty'], ints['no_repeat_ngram'], penalize_symbols, keys)
    prefill_len = max(len(req.ids) - 1 for req, _, _ in picks.values())
    for start in range(0, prefill_len, c):
      tokens = np.zeros((d, c), np.int32)
      busy = np.zeros((d,), bool)
      for shard, (req, _, _) in picks.items():
        part = req.ids[start:min(start + c, len(req.ids) - 1)]
        tokens[shard, :len(part)] = part
        busy[shard] = len(part) > 0
      self.state = self.fns.prefill_chunk(self.params, self.state, busy, ints['slot'], tokens,
                                          np.full((d,), start, np.int32))

  def run(self, feed: RequestFeed, stream: bool, chunk_events: bool = False) -> Iterator[Any]:
    """Yields TokensEvent (when `stream`), DoneEvent for every admitted request and, when
    `chunk_events`, a ChunkEvent after each chunk (before its TokensEvents). Admission is FIFO in the
    feed's order; returns once the feed is exhausted and every admitted request is done. Requests
    the feed reports cancelled have their branches ended before the next chunk (their pages freed)
    and complete with a `DoneEvent(cancelled=True)` holding what they had decoded."""
    caps, d = self.caps, self.shards
    free_slots = [list(range(caps.max_slots)) for _ in range(d)]  # local indices per shard
    free_reqs = [list(range(caps.max_requests)) for _ in range(d)]
    avail = np.full((d,), caps.num_pages)
    active = np.zeros((d,), int)  # unfinished branches per shard: the next chunk's row bucket
    flight: dict[int, _InFlight] = {}  # by global request index
    drained = np.zeros((d * caps.max_slots,), bool)
    t0 = time.perf_counter()
    clock = lambda: time.perf_counter() - t0  # noqa: E731
    while not feed.exhausted() or flight:
      while True:  # rounds of at most one admission per shard, FIFO
        picks: dict[int, tuple[PreparedRequest, int, int]] = {}
        refused = False  # an arrived request found no room (in the last round: none admitted)
        while (req := feed.head(clock())) is not None:
          need = pages_for(len(req.ids) - 1 + req.max_new + caps.slack, caps.page_size)
          open_shards = [s for s in range(d) if s not in picks and free_slots[s] and free_reqs[s]
                         and avail[s] >= need]
          if not open_shards:
            refused = True
            break
          shard = max(open_shards, key=lambda s: (avail[s], -s))
          feed.pop()
          slot, r = free_slots[shard].pop(0), free_reqs[shard].pop(0)
          picks[shard] = (req, slot, r)
          drained[shard * caps.max_slots + slot] = False
          avail[shard] -= need
          active[shard] += 1
          flight[shard * caps.max_requests + r] = _InFlight(req)
        if not picks:
          break
        self._admit(picks)
      self._cancel(feed.take_cancelled(), flight)
      if not flight:
        if feed.exhausted():
          break
        if refused:
          raise RuntimeError('no request could be admitted although the engine is idle; the '
                             'capacity checks should have refused it')
        feed.wait(clock())
        continue
      rows = row_buckets.bucket_for(int(active.max()), self.fns.buckets)
      # A host copy that nobody mutates: `jnp.array(x, copy=True)` makes no host copy of a numpy
      # input (it goes through np.asarray), and the transfer / the asynchronously dispatched chunk
      # may read the buffer after this call returns, so resetting `drained` below raced with it
      # (finished slots left undrained: a KeyError in `_drain`; seen under load).
      draft = (self.control is None or rows not in self.fns.drafting_buckets
               or self.control.draft(rows))
      self.state = self.fns.run_chunk(self.params, self.state,
                                      jnp.asarray(drained.reshape(d, caps.max_slots).copy()),
                                      jnp.int32(self.chunk_steps), rows=rows, draft=draft)
      drained[:] = False
      summary = self._last = read_summary(self.fns, self.state, caps)
      if self.control is not None:
        self.control.observe_counters(rows, summary['drafted'].reshape(-1, 2).sum(axis=0))
      self.stats['chunks'] += 1
      self.stats['steps'] = int(np.max(summary['steps']))
      self.stats['peak_kv_pages'] = int(np.sum(summary['global_peak']))
      if chunk_events:
        yield ChunkEvent(clock(), int(np.max(summary['steps'])),
                         d * caps.num_pages - int(np.sum(summary['num_free'])),
                         int(np.sum(summary['status'] == LIVE)), len(flight), feed.waiting())
      yield from self._drain(summary, flight, drained, stream)
      for g in [g for g in flight if summary['live_branches'][g] == 0]:
        inflight = flight.pop(g)
        free_reqs[g // caps.max_requests].append(g % caps.max_requests)
        counters = {k: int(summary[k][g]) for k in ('decode_steps', 'forks', 'refused_forks',
                                                    'max_live', 'peak_pages', 'attended',
                                                    'branch_steps')}
        result = self.finish(inflight.req, inflight.branches, counters, clock())
        yield DoneEvent(inflight.req.index, result, cancelled=inflight.cancelled)
      reusable = np.nonzero((summary['status'] == FREE) | drained)[0]
      free_slots = [[int(g) % caps.max_slots for g in reusable if g // caps.max_slots == s]
                    for s in range(d)]
      avail = available_pages(summary, caps)
      active = np.asarray(is_active(summary['status'])).reshape(d, caps.max_slots).sum(axis=1)

  def _cancel(self, indices: set[int], flight: dict[int, _InFlight]) -> None:
    """Ends the branches of the admitted requests whose `index` is in `indices` (one device call;
    none when nothing in flight was cancelled)."""
    hit = [g for g, f in flight.items() if f.req.index in indices and not f.cancelled]
    if not hit:
      return
    mask = np.zeros((self.shards * self.caps.max_requests,), bool)
    mask[hit] = True
    for g in hit:
      flight[g].cancelled = True
    self.state = self.fns.cancel(self.state,
                                 jnp.asarray(mask.reshape(self.shards, self.caps.max_requests)))

  def _drain(self, summary: dict[str, np.ndarray], flight: dict[int, _InFlight],
             drained: np.ndarray, stream: bool) -> Iterator[TokensEvent]:
    """Collects DONE branches (marking their slots drained) and streams new tokens."""
    for s in range(self.shards * self.caps.max_slots):  # global slot indices
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
