"""Cancelling requests between chunks (a client gone mid-answer): their branches end now.

Every unfinished slot of a cancelled request becomes DONE with its page references dropped, as if it
had reached its stop token, and the request's live-branch count drops to 0; the host then drains
those slots and completes the request as usual (`Scheduler`), so the slot, request and page
bookkeeping has one path whether an answer ended or was cut. A PENDING child holds no page yet (it
shares its parent's only at `fork.spawn`), so it only gives up its reservation.
"""

import jax
import jax.numpy as jnp

from apar_jax.engine.device import page_allocator
from apar_jax.engine.device.state import DONE, PENDING, Capacities, EngineState, is_active


def cancel_requests(state: EngineState, cancel: jax.Array, caps: Capacities) -> EngineState:
  """Ends every branch of the requests in `cancel [R] bool` (one shard); other requests untouched."""
  slots = state.slots
  hit = is_active(slots.status) & cancel[slots.request]  # [S]
  # A PENDING slot's `num_pages` counts the pages it will share, none of them referenced yet.
  slots = slots.replace(num_pages=jnp.where(hit & (slots.status == PENDING), 0, slots.num_pages))
  pool, slots = page_allocator.release_slots(state.pool, slots, hit, caps.sink)
  slots = slots.replace(status=jnp.where(hit, DONE, slots.status))
  requests = state.requests.replace(
      live_branches=jnp.where(cancel, 0, state.requests.live_branches))
  return state.replace(pool=pool, slots=slots, requests=requests)
