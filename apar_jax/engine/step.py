"""One decode step over all S slots (Q = 1): grow pages, forward (on the live rows only, see
`row_buckets`), spawn, choose, fork, emit, finish.

Every LIVE slot feeds `last_token` at position `length`; the block's K/V go into the slot's pages
and attention reads them through `PagedSpec` (branch-local: a slot reads only its own page table).
Other slots write nothing. AR and APAR differ only in the token bans and the fork phase
(`apar=False` compiles the fork machinery out).
"""

import dataclasses
import functools
from typing import Any, Optional

import jax
import jax.numpy as jnp

from apar_jax.engine import fork, page_allocator, row_buckets
from apar_jax.engine.state import DONE, LIVE, Capacities, EngineState, Requests, Slots
from apar_jax.engine.step_hints import StepHints, refine_if
from apar_jax.engine.token_choice import ControlIds, ban_column, choose
from apar_jax.model import PagedSpec, Transformer


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Everything static a step needs (hashable: part of the compile key)."""
  model: Transformer
  caps: Capacities
  ids: ControlIds
  apar: bool
  attention_impl: str = 'auto'


def forward(params: Any, state: EngineState, live: jax.Array, cfg: StepConfig):
  """Feeds each slot's `last_token` at its `length`; returns (logits [S, V], new caches)."""
  slots = state.slots
  spec = PagedSpec(slots.page_table, slots.length, None, write=live, impl=cfg.attention_impl)
  out = cfg.model.apply({'params': params}, slots.last_token[:, None], slots.length[:, None], spec,
                        state.caches)
  return out.logits[:, 0], out.caches


def choose_tokens(state: EngineState, logits: jax.Array, live: jax.Array, cfg: StepConfig,
                  hints: Optional[StepHints] = None) -> tuple[EngineState, jax.Array]:
  """[S] next tokens with the mode's bans; in APAR mode also grants and claims forks."""
  ids, caps = cfg.ids, cfg.caps
  slots, requests = state.slots, state.requests
  pick = functools.partial(choose, slots=slots, requests=requests, hints=hints,
                           exempt=(ids.fork, ids.child), symbols=ids.symbols)  # never penalised
  all_rows = jnp.ones_like(live)
  logits = ban_column(logits, ids.child, all_rows)  # [Child] is forced, never chosen
  if not cfg.apar:
    return state, pick(ban_column(logits, ids.fork, all_rows))
  logits = ban_column(logits, ids.fork, fork.rule_ban(slots, requests, caps, ids))
  tok = pick(logits)
  want = live & (tok == ids.fork)
  granted = fork.grant(state.pool, slots, requests, want, caps)
  refused = want & ~granted
  tok = refine_if(jnp.any(refused),
                  lambda: jnp.where(refused, pick(ban_column(logits, ids.fork, refused)), tok),
                  lambda: tok, hints)
  slots, requests = fork.claim(slots, requests, granted, caps, ids)
  n_refused = jax.ops.segment_sum(refused.astype(jnp.int32), slots.request,
                                  num_segments=caps.max_requests)
  requests = requests.replace(refused_forks=requests.refused_forks + n_refused)
  return state.replace(slots=slots, requests=requests), tok


def stamp_steps(slots: Slots, requests: Requests, emitting: jax.Array) -> Slots:
  """Before `num_out` advances: the request's current decode step (0-based; `record_stats` has
  counted it) becomes the `last_step` of every emitting slot and the `first_step` of those emitting
  their first token (branch timelines in `Result.branches`)."""
  step = requests.decode_steps[slots.request] - 1
  first = emitting & (slots.num_out == 0)
  return slots.replace(first_step=jnp.where(first, step, slots.first_step),
                       last_step=jnp.where(emitting, step, slots.last_step))


def emit(state: EngineState, tok: jax.Array, live: jax.Array, cfg: StepConfig) -> EngineState:
  """Appends `tok` to the outputs of LIVE slots, advances them, and finishes those at EOS/budget."""
  caps = cfg.caps
  slots = stamp_steps(state.slots, state.requests, live)
  s = caps.max_slots
  col = jnp.where(live, slots.num_out, caps.max_new_tokens)  # out of bounds = dropped
  tokens = slots.tokens.at[jnp.arange(s), col].set(tok, mode='drop')
  num_out = slots.num_out + live
  slots = slots.replace(tokens=tokens, num_out=num_out, length=slots.length + live,
                        last_token=jnp.where(live, tok, slots.last_token))
  stop = jnp.isin(tok, jnp.asarray(cfg.ids.stop, jnp.int32))
  finishing = live & (stop | (num_out >= slots.budget))
  pool, slots = page_allocator.release_slots(state.pool, slots, finishing, caps.sink)
  slots = slots.replace(status=jnp.where(finishing, DONE, slots.status))
  ended = jax.ops.segment_sum(finishing.astype(jnp.int32), slots.request,
                              num_segments=caps.max_requests)
  requests = state.requests.replace(live_branches=state.requests.live_branches - ended)
  return state.replace(pool=pool, slots=slots, requests=requests)


def record_stats(state: EngineState, live: jax.Array, cfg: StepConfig) -> EngineState:
  """Per-request decode steps, branch steps, live branches, attended KV tokens and pages; global
  peak pages."""
  caps = cfg.caps
  slots, req, pool = state.slots, state.requests, state.pool
  r = caps.max_requests
  live_i = live.astype(jnp.int32)
  n_live = jax.ops.segment_sum(live_i, slots.request, num_segments=r)
  attended = jax.ops.segment_sum(live_i * (slots.length + 1), slots.request, num_segments=r)
  in_use = (pool.refcount > 0).astype(jnp.int32)
  pages = jax.ops.segment_sum(in_use, pool.owner, num_segments=r)
  req = req.replace(decode_steps=req.decode_steps + (n_live > 0), max_live=jnp.maximum(
      req.max_live, n_live), attended=req.attended + attended,
      peak_pages=jnp.where(n_live > 0, jnp.maximum(req.peak_pages, pages), req.peak_pages),
      branch_steps=req.branch_steps + n_live)
  return state.replace(requests=req, steps=state.steps + 1, peak_pages=jnp.maximum(
      state.peak_pages, page_allocator.pages_in_use(pool)))


def decode_step(params: Any, state: EngineState, cfg: StepConfig,
                hints: Optional[StepHints] = None, rows: Optional[int] = None) -> EngineState:
  """One step of every LIVE slot (`hints`: shared by all data shards, see `step_hints`); the
  forward runs on a bucket of `rows` rows holding the LIVE slots (`row_buckets`; None = all S)."""
  if cfg.apar:
    state = fork.copy_on_write(state, cfg.caps, hints)
  live = state.slots.status == LIVE  # [S] slots that decode now (children spawned below wait)
  pool, slots = page_allocator.grow(state.pool, state.slots, live, cfg.caps.page_size,
                                    cfg.caps.sink)
  state = state.replace(pool=pool, slots=slots)
  logits, caches = row_buckets.on_live_rows(
      lambda st, lv: forward(params, st, lv, cfg), state, live,
      cfg.caps.max_slots if rows is None else rows)
  state = state.replace(caches=caches)
  if cfg.apar:
    state = fork.spawn(state, cfg.caps)
  state, tok = choose_tokens(state, logits, live, cfg, hints)
  state = record_stats(state, live, cfg)
  return emit(state, tok, live, cfg)
