"""One decode step over all S slots, for every mode: grow pages, forward (on the live rows only,
see `row_buckets`), spawn, choose, fork, emit, finish.

AR and APAR are the root-only tree: every LIVE slot feeds `last_token` at position `length` (Q = 1);
its K/V go into the slot's pages and attention reads them through `PagedSpec` (branch-local: a slot
reads only its own page table). A speculative mode whose tree drafts runs `spec_step.tree_step`
instead, which feeds the whole tree; both end in the same `step_commit` (forks, statistics,
emission, finished branches). AR and APAR differ only in the token bans and the fork phase
(`apar=False` compiles the fork machinery out).
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp

from apar_jax.engine.device import fork, page_allocator, row_buckets, spec_state
from apar_jax.engine.device.spec_step import tree_step
from apar_jax.engine.device.state import LIVE, EngineState
from apar_jax.engine.device.step_commit import emit, record_stats, settle_forks
from apar_jax.engine.device.step_config import StepConfig
from apar_jax.engine.device.step_hints import StepHints
from apar_jax.engine.device.token_choice import ban_column, choose
from apar_jax.model import PagedSpec


def forward(params: Any, state: EngineState, live: jax.Array, cfg: StepConfig):
  """Feeds each slot's `last_token` at its `length`; returns (logits [S, V], new caches)."""
  slots = state.slots
  spec = PagedSpec(slots.page_table, slots.length, None, write=live, impl=cfg.attention_impl)
  out = cfg.model.apply({'params': params}, slots.last_token[:, None], slots.length[:, None], spec,
                        state.caches)
  return out.logits[:, 0], out.caches


def choose_tokens(state: EngineState, logits: jax.Array, live: jax.Array, cfg: StepConfig,
                  hints: Optional[StepHints] = None) -> tuple[EngineState, jax.Array, jax.Array]:
  """[S] next tokens with the mode's bans; in APAR mode also grants and claims forks. Returns
  (state, tokens [S], new_child [S])."""
  ids = cfg.ids
  exempt = (ids.fork, ids.child)  # never penalised
  pick = lambda lg, sl: choose(lg, sl, state.requests, hints, exempt, ids.symbols)  # noqa: E731
  all_rows = jnp.ones_like(live)
  logits = ban_column(logits, ids.child, all_rows)  # [Child] is forced, never chosen
  if not cfg.apar:
    return state, pick(ban_column(logits, ids.fork, all_rows), state.slots), jnp.zeros_like(live)
  logits = ban_column(logits, ids.fork, fork.rule_ban(state.slots, state.requests, cfg.caps, ids))
  tok = pick(logits, state.slots)
  state, tokens, new_child = settle_forks(state, tok[:, None], jnp.ones_like(tok), logits, live,
                                          cfg.caps, ids, pick, hints)
  return state, tokens[:, 0], new_child


def root_step(params: Any, state: EngineState, cfg: StepConfig,
              hints: Optional[StepHints] = None, rows: Optional[int] = None) -> EngineState:
  """The root-only tree's step (AR, APAR, a speculative mode while it does not draft); a drafter
  that reads the history (prompt lookup, token recycling) has it kept current. Drafts are left as
  they are (a later drafting step may find them stale: verified, so never wrong)."""
  caps = cfg.caps
  if cfg.apar:
    state = fork.copy_on_write(state, caps, hints)
  live = state.slots.status == LIVE  # [S] slots that decode now (children spawned below wait)
  pool, slots = page_allocator.grow(state.pool, state.slots, live, 1, caps.page_size, caps.sink)
  state = state.replace(pool=pool, slots=slots)
  logits, caches = row_buckets.on_live_rows(
      lambda st, lv: forward(params, st, lv, cfg), state, live,
      caps.max_slots if rows is None else rows)
  state = state.replace(caches=caches)
  if cfg.apar:
    state = fork.spawn(state, caps)
  state, tok, new_child = choose_tokens(state, logits, live, cfg, hints)
  state = record_stats(state, live, caps)
  length_before = state.slots.length
  state, n_emit = emit(state, tok[:, None], jnp.ones_like(tok), live, caps, cfg.ids)
  if cfg.spec is None or not spec_state.uses_history(cfg.spec):
    return state
  history = spec_state.history_emit(state.spec.history, length_before, tok[:, None], n_emit)
  if cfg.apar:
    slots = state.slots
    history = spec_state.history_fork(history, new_child, slots.parent_slot, slots.length,
                                      cfg.ids.child)
  return state.replace(spec=state.spec.replace(history=history))


def decode_step(params: Any, state: EngineState, cfg: StepConfig,
                hints: Optional[StepHints] = None, rows: Optional[int] = None) -> EngineState:
  """One step of every LIVE slot in every mode (`hints`: shared by all data shards, see
  `step_hints`); the forward runs on a bucket of `rows` rows holding the LIVE slots (`row_buckets`;
  None = all S). Speculative modes: params = (base params, drafter params)."""
  if cfg.spec is None:
    return root_step(params, state, cfg, hints, rows)
  base_params, drafter_params = params
  if not cfg.drafts:
    return root_step(base_params, state, cfg, hints, rows)
  return tree_step(base_params, drafter_params, state, cfg, hints, rows)
