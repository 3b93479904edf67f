"""APAR forking inside the decode step: which slots may fork, who gets a slot, spawning children.

Timeline of one fork (parent slot s, `[Fork]` sampled at step t, so it will sit at position p):
  step t:   `[Fork]` chosen; if granted, a FREE slot c becomes PENDING (its pages are reserved) with
            length p + 1 and `last_token = [Child]`; if refused, s re-chooses with `[Fork]` banned.
  step t+1: s feeds `[Fork]` (its K/V land at p); after the forward, c references all of s's pages
            up to p: LIVE if p + 1 is a page boundary, else COPYING.
  step t+2: first thing, a COPYING c gets a fresh page holding a copy of the shared partial one
            (copy on write) and goes LIVE; then c feeds `[Child]` at p + 1, in the same forward as
            s's next token (also at p + 1).
At most `fork_copies_per_step` copies run per step (a fixed-size, branch-free gather and scatter: a
`lax.cond` around the copy made XLA copy the whole pool every step); other children wait COPYING a
step longer, their reference keeping the parent's page alive. Pages are append-only, so the copied
positions <= p never change.
"""

from typing import Optional

import jax
import jax.numpy as jnp

from apar_jax.engine.device import page_allocator
from apar_jax.engine.device.state import (COPYING, FREE, LIVE, PENDING, Capacities, EngineState,
                                          PagePool, Requests, Slots, outstanding_pages, pages_for)
from apar_jax.engine.device.step_hints import StepHints, refine_if
from apar_jax.engine.device.token_choice import ControlIds, child_key_data
from apar_jax.model import PagedCache


def child_budget(slots: Slots, requests: Requests, caps: Capacities) -> jax.Array:
  """[S] budget of a child forked at the token chosen now (its `[Child]` at length + 2)."""
  return jnp.minimum(requests.max_new[slots.request], caps.slot_capacity - (slots.length + 2))


def rule_ban(slots: Slots, requests: Requests, caps: Capacities, ids: ControlIds) -> jax.Array:
  """[S] bool: `[Fork]` is not a legal next token (these bans are rules, not counted as refusals).

  Banned right after `[Fork]`/`[Child]`, at the depth cap, as a branch's last budgeted token (the
  branch would never feed it), and when the child would have no room left in a slot.
  """
  after_control = (slots.last_token == ids.fork) | (slots.last_token == ids.child)
  at_depth_cap = slots.depth >= caps.max_depth
  last_token = slots.num_out + 1 >= slots.budget
  no_room = child_budget(slots, requests, caps) < 1
  return after_control | at_depth_cap | last_token | no_room


def grant(pool: PagePool, slots: Slots, requests: Requests, want: jax.Array,
          caps: Capacities) -> jax.Array:
  """[S] bool: which of the slots that chose `[Fork]` (`want [S]`) get a child.

  Requests are served in slot order against three budgets: free slots, free pages not reserved by
  live branches, and the request's live-branch quota. Counts include earlier refused requesters, so
  the grant is conservative and never over-commits.
  """
  s = caps.max_slots
  want_i = want.astype(jnp.int32)
  rank = jnp.cumsum(want_i)  # [S] 1-based among requesters
  free_slots = jnp.sum((slots.status == FREE).astype(jnp.int32))
  p = slots.length + 1  # position of the [Fork]
  budget = child_budget(slots, requests, caps)
  need = pages_for(p + 1 + budget + caps.slack, caps.page_size) - (p + 1) // caps.page_size  # [S]
  available = pool.num_free - outstanding_pages(slots, caps.page_size)
  pages_ok = jnp.cumsum(jnp.where(want, need, 0)) <= available
  same_req = slots.request[:, None] == slots.request[None, :]  # [S, S]
  earlier = jnp.tril(jnp.ones((s, s), bool))
  rank_in_req = jnp.sum(same_req & earlier & want[None, :], axis=1)  # [S] 1-based
  quota_ok = requests.live_branches[slots.request] + rank_in_req <= caps.max_live_branches
  return want & (rank <= free_slots) & pages_ok & quota_ok


def claim(slots: Slots, requests: Requests, granted: jax.Array, caps: Capacities,
          ids: ControlIds) -> tuple[Slots, Requests]:
  """Turns one FREE slot per granted parent into a PENDING child (pages reserved, none shared)."""
  s = caps.max_slots
  g = granted.astype(jnp.int32)
  free_list = jnp.nonzero(slots.status == FREE, size=s, fill_value=s)[0]  # [S]
  target = jnp.where(granted, free_list[jnp.clip(jnp.cumsum(g) - 1, 0, s - 1)], s)  # [S] child slot
  r = slots.request
  same_req = r[:, None] == r[None, :]
  rank_in_req = jnp.sum(same_req & jnp.tril(jnp.ones((s, s), bool)) & granted[None, :], axis=1)
  p = slots.length + 1
  budget = child_budget(slots, requests, caps)
  fork_point = slots.num_out  # the [Fork] is the parent's output number num_out
  values = dict(
      status=jnp.full((s,), PENDING, jnp.int32), request=r,
      branch=requests.next_branch[r] + rank_in_req - 1, parent_branch=slots.branch,
      parent_slot=jnp.arange(s, dtype=jnp.int32), depth=slots.depth + 1, fork_point=fork_point,
      length=p + 1, last_token=jnp.full((s,), ids.child, jnp.int32), budget=budget,
      max_len=p + 1 + budget + caps.slack, num_pages=pages_for(p + 1, caps.page_size),
      num_out=jnp.zeros((s,), jnp.int32))
  updates = {k: getattr(slots, k).at[target].set(v, mode='drop') for k, v in values.items()}
  updates['key'] = slots.key.at[target].set(child_key_data(slots.key, fork_point), mode='drop')
  n_new = jax.ops.segment_sum(g, r, num_segments=caps.max_requests)
  requests = requests.replace(live_branches=requests.live_branches + n_new,
                              next_branch=requests.next_branch + n_new,
                              forks=requests.forks + n_new)
  return slots.replace(**updates), requests


def copy_pages(caches: tuple, src: jax.Array, dst: jax.Array, sink: int) -> tuple:
  """Copies page src[i] -> dst[i] ([N] each) in every layer's pool; rows with dst == sink skip."""
  dst = jnp.where(dst == sink, sink + 1, dst)  # one past the pool: dropped
  return tuple(PagedCache(c.k_pages.at[dst].set(c.k_pages[src], mode='drop'),
                          c.v_pages.at[dst].set(c.v_pages[src], mode='drop')) for c in caches)


def spawn(state: EngineState, caps: Capacities) -> EngineState:
  """After the forward: PENDING children (their parent just wrote `[Fork]`) reference the parent's
  pages; those whose prefix ends on a page boundary go LIVE, the others wait COPYING."""
  slots = state.slots
  pending = slots.status == PENDING
  pool, slots = page_allocator.share_prefix(state.pool, slots, pending)
  aligned = slots.length % caps.page_size == 0
  status = jnp.where(pending, jnp.where(aligned, LIVE, COPYING), slots.status)
  slots = slots.replace(status=status, parent_slot=jnp.where(pending, -1, slots.parent_slot))
  return state.replace(pool=pool, slots=slots)


def copy_on_write(state: EngineState, caps: Capacities,
                  hints: Optional[StepHints] = None) -> EngineState:
  """Before the forward: up to `fork_copies_per_step` COPYING children get their own copy of the
  shared partial page and go LIVE (in time to feed `[Child]` in this step). Skipped (a `lax.cond`)
  in the many steps where no child is COPYING.

  Copying first in the step, before any write to the pool, keeps the update in place: after the
  forward's writes XLA copied the whole pool.
  """
  return refine_if(jnp.any(state.slots.status == COPYING), lambda: _copy_children(state, caps),
                   lambda: state, hints)


def _copy_children(state: EngineState, caps: Capacities) -> EngineState:
  slots = state.slots
  chosen = jnp.nonzero(slots.status == COPYING, size=caps.fork_copies_per_step,
                       fill_value=caps.max_slots)[0]  # [F] slot indices (S = none)
  pool, slots, src, dst = page_allocator.unshare_last(state.pool, slots, chosen, caps.page_size,
                                                      caps.sink)
  caches = copy_pages(state.caches, src, dst, caps.sink)
  slots = slots.replace(status=slots.status.at[chosen].set(LIVE, mode='drop'))
  return state.replace(caches=caches, pool=pool, slots=slots)
