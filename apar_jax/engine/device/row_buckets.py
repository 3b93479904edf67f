"""Live-width buckets: the model forward runs on as many rows as there are live branches, not on
every slot.

A step's forward (the costly part: the LM head alone is a [rows, d] x [d, V] matmul) gathers the
LIVE slots into a static bucket of `rows` rows, runs on those, and scatters its outputs back to the
`[S, ...]` layout the rest of the step (token choice, forks, page bookkeeping: all cheap) works on.
Buckets are powers of two up to S; each is one compile of the chunk. The chunk loop stops before a
step whose unfinished branches (LIVE, PENDING or COPYING) outnumber its bucket (a fork that needs a
wider one ends the chunk early), and the host picks the next chunk's bucket from the live count.
"""

from typing import Callable

import jax
import jax.numpy as jnp

from apar_jax.engine.device.state import EngineState, Slots, is_active


def buckets(max_slots: int) -> tuple[int, ...]:
  """The row buckets of an engine with `max_slots` slots: 1, 2, 4, ... and `max_slots` itself."""
  out, b = [], 1
  while b < max_slots:
    out.append(b)
    b *= 2
  return tuple(out) + (max_slots,)


def bucket_for(active: int, sizes: tuple[int, ...]) -> int:
  """The smallest of the bucket `sizes` (ascending, the last = every slot) holding `active` rows."""
  return next((b for b in sizes if b >= active), sizes[-1])


def fits(state: EngineState, rows: int) -> jax.Array:
  """[] bool: every shard's unfinished branches fit in `rows` (one shard's state or `[D, ...]`)."""
  active = jnp.sum(is_active(state.slots.status).astype(jnp.int32), axis=-1)
  return jnp.max(active) <= rows


def live_rows(live: jax.Array, rows: int) -> jax.Array:
  """[rows] int32: the LIVE slots in slot order, padded with S (no slot). Callers guarantee that at
  most `rows` slots are live (`fits`)."""
  s = live.shape[0]
  return jnp.nonzero(live, size=rows, fill_value=s)[0].astype(jnp.int32)


def take(slots: Slots, idx: jax.Array) -> Slots:
  """The slots `idx [rows]` (in range: padding rows clipped to slot S - 1, their writes masked)."""
  return jax.tree.map(lambda x: x[idx], slots)


def put(x: jax.Array, idx: jax.Array, s: int) -> jax.Array:
  """`x [rows, ...]` scattered to `[s, ...]` at `idx` (padding rows dropped; other rows zero)."""
  return jnp.zeros((s,) + x.shape[1:], x.dtype).at[idx].set(x, mode='drop')


def on_live_rows(fn: Callable[..., tuple], state: EngineState, live: jax.Array, rows: int,
                 *row_args: jax.Array) -> tuple:
  """Runs `fn(state_with_rows, live_rows, *row_args_rows) -> (*outputs [rows, ...], caches)` on the
  live rows and returns `(*outputs [S, ...], caches)`. With `rows == S` it runs on every slot, as
  the step did before buckets. Outputs that are None stay None."""
  s = live.shape[0]
  if rows >= s:
    return fn(state, live, *row_args)
  idx = live_rows(live, rows)
  safe = jnp.clip(idx, 0, s - 1)  # padding rows read slot S - 1 and write nothing
  sub = state.replace(slots=take(state.slots, safe))
  *outputs, caches = fn(sub, (idx < s) & live[safe], *(a[safe] for a in row_args))
  return (*(None if o is None else put(o, idx, s) for o in outputs), caches)


def map_live_rows(fn: Callable[..., jax.Array], live: jax.Array, rows: int,
                  *args: jax.Array) -> jax.Array:
  """`fn(*args_rows) -> [rows, ...]` on the live rows of `args [S, ...]`, scattered back to
  `[S, ...]` (zeros on the other rows). With `rows == S` it runs on every slot."""
  s = live.shape[0]
  if rows >= s:
    return fn(*args)
  idx = live_rows(live, rows)
  safe = jnp.clip(idx, 0, s - 1)
  return put(fn(*(a[safe] for a in args)), idx, s)
