"""What every decode step does once its tokens are chosen, whatever the mode: grant or refuse forks,
count the step, emit the tokens, finish branches (pages released).

A step emits `n [S]` tokens per slot (`tokens [S, W]`, W >= 1): AR and APAR one, a verified tree
1 .. depth + 1. The step's last token may be `[Fork]` (APAR) or a stop token; the invariants here
hold for both kinds of step, so `step.py` and `spec_step.py` keep them once.
"""

from typing import Callable, Optional

import jax
import jax.numpy as jnp

from apar_jax.engine.device import fork, page_allocator
from apar_jax.engine.device.state import DONE, Capacities, EngineState, Requests, Slots
from apar_jax.engine.device.step_hints import StepHints, refine_if
from apar_jax.engine.device.token_choice import ControlIds, ban_column

# (logits [S, V], the slots as the chosen token sees them) -> [S] tokens
Picker = Callable[[jax.Array, Slots], jax.Array]


def settle_forks(state: EngineState, tokens: jax.Array, n: jax.Array, node_logits: jax.Array,
                 live: jax.Array, caps: Capacities, ids: ControlIds, pick: Picker,
                 hints: Optional[StepHints] = None
                 ) -> tuple[EngineState, jax.Array, jax.Array]:
  """Grants a child to every live slot whose step ends in `[Fork]`; a refused one re-chooses its
  last token with `[Fork]` banned (`pick` over `node_logits [S, V]`, the logits that chose it).

  The fork machinery sees each slot as it will be just before its last token (length and num_out
  advanced by n - 1), so the `[Fork]` lands at `length + n` and the child's fork point is its
  output index. Returns (state, tokens [S, W] with the re-chosen last tokens, new_child [S]).
  """
  slots, requests = state.slots, state.requests
  rows = jnp.arange(n.shape[0])
  last = tokens[rows, n - 1]  # [S]
  want = live & (last == ids.fork) & (n <= slots.budget - slots.num_out)
  view = slots.replace(length=slots.length + n - 1, num_out=slots.num_out + n - 1)
  granted = fork.grant(state.pool, view, requests, want, caps)
  refused = want & ~granted
  last = refine_if(jnp.any(refused),
                   lambda: jnp.where(refused, pick(ban_column(node_logits, ids.fork, refused),
                                                   view), last),
                   lambda: last, hints)
  tokens = tokens.at[rows, n - 1].set(last)
  claimed, requests = fork.claim(view, requests, granted, caps, ids)
  new_child = claimed.status != slots.status
  slots = claimed.replace(length=jnp.where(new_child, claimed.length, slots.length),
                          num_out=jnp.where(new_child, claimed.num_out, slots.num_out))
  n_refused = jax.ops.segment_sum(refused.astype(jnp.int32), slots.request,
                                  num_segments=caps.max_requests)
  requests = requests.replace(refused_forks=requests.refused_forks + n_refused)
  return state.replace(slots=slots, requests=requests), tokens, new_child


def stamp_steps(slots: Slots, requests: Requests, emitting: jax.Array) -> Slots:
  """Before `num_out` advances: the request's current decode step (0-based; `record_stats` has
  counted it) becomes the `last_step` of every emitting slot and the `first_step` of those emitting
  their first token (branch timelines in `Result.branches`)."""
  step = requests.decode_steps[slots.request] - 1
  first = emitting & (slots.num_out == 0)
  return slots.replace(first_step=jnp.where(first, step, slots.first_step),
                       last_step=jnp.where(emitting, step, slots.last_step))


def record_stats(state: EngineState, live: jax.Array, caps: Capacities) -> EngineState:
  """Per-request decode steps, branch steps, live branches, attended KV tokens and pages; global
  peak pages."""
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


def emit(state: EngineState, tokens: jax.Array, n: jax.Array, live: jax.Array, caps: Capacities,
         ids: ControlIds) -> tuple[EngineState, jax.Array]:
  """Appends each live slot's first `n` of `tokens [S, W]` (cut at its budget) to its output,
  advances it, and finishes it at a stop token or its budget (pages released). Returns (state,
  n_emit [S])."""
  slots = state.slots
  s, w = tokens.shape
  n_emit = jnp.where(live, jnp.minimum(n, slots.budget - slots.num_out), 0)
  slots = stamp_steps(slots, state.requests, n_emit > 0)
  j = jnp.arange(w)[None]
  emitted = j < n_emit[:, None]  # [S, W]
  col = jnp.where(emitted, slots.num_out[:, None] + j, caps.max_new_tokens)  # dropped if not
  out = slots.tokens.at[jnp.arange(s)[:, None], col].set(tokens, mode='drop')
  last = tokens[jnp.arange(s), jnp.maximum(n_emit - 1, 0)]
  num_out = slots.num_out + n_emit
  slots = slots.replace(tokens=out, num_out=num_out, length=slots.length + n_emit,
                        last_token=jnp.where(live, last, slots.last_token))
  stop = jnp.any(emitted & jnp.isin(tokens, jnp.asarray(ids.stop, jnp.int32)), axis=1)
  finishing = live & (stop | (num_out >= slots.budget))
  pool, slots = page_allocator.release_slots(state.pool, slots, finishing, caps.sink)
  slots = slots.replace(status=jnp.where(finishing, DONE, slots.status))
  ended = jax.ops.segment_sum(finishing.astype(jnp.int32), slots.request,
                              num_segments=caps.max_requests)
  requests = state.requests.replace(live_branches=state.requests.live_branches - ended)
  return state.replace(pool=pool, slots=slots, requests=requests), n_emit
