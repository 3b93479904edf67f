"""Vectorised page allocation on device: a free stack plus per-page refcounts.

Pool level: `allocate` pops pages for the rows that want one (a cumsum gives each row its place on
the stack), `release` drops references and pushes pages whose count reaches zero. Slot level: `grow`
gives slots the pages of their next positions, `share_prefix` makes a child reference its parent's
pages, `unshare_last` swaps a child's shared partial page for a fresh one (copy on write),
`release_slots` drops a finished slot's pages. No Python branching on values: everything is masked,
so it runs inside `jax.lax.while_loop`.
"""

import jax
import jax.numpy as jnp

from apar_jax.engine.device.state import PagePool, Slots, pages_for


def allocate(pool: PagePool, want: jax.Array, owner: jax.Array,
             sink: int) -> tuple[PagePool, jax.Array]:
  """Pops one page for each row of `want [N] bool`; returns (pool, pages [N] int32).

  Rows that want nothing get `sink`. Callers reserve pages beforehand (see
  `state.outstanding_pages`), so the stack never runs dry; if it did, extra rows would get `sink`.
  """
  rank = jnp.cumsum(want.astype(jnp.int32)) - 1  # [N]
  got = want & (rank < pool.num_free)
  top = pool.num_free - 1 - rank
  pages = jnp.where(got, pool.free_stack[jnp.clip(top, 0, pool.free_stack.shape[0] - 1)], sink)
  refcount = pool.refcount.at[pages].set(1, mode='drop')  # sink is out of bounds: dropped
  owners = pool.owner.at[pages].set(owner, mode='drop')
  num_free = pool.num_free - jnp.sum(got.astype(jnp.int32))
  return PagePool(refcount, pool.free_stack, num_free, owners), pages.astype(jnp.int32)


def retain(pool: PagePool, pages: jax.Array, mask: jax.Array) -> PagePool:
  """Adds one reference to each masked entry of `pages` (any shape; duplicates count twice)."""
  idx = jnp.where(mask, pages, pool.refcount.shape[0]).reshape(-1)
  return pool.replace(refcount=pool.refcount.at[idx].add(1, mode='drop'))


def release(pool: PagePool, pages: jax.Array, mask: jax.Array) -> PagePool:
  """Drops one reference per masked entry of `pages`; pages reaching zero go back on the stack."""
  num_pages = pool.refcount.shape[0]
  idx = jnp.where(mask, pages, num_pages).reshape(-1)
  refcount = pool.refcount.at[idx].add(-1, mode='drop')
  freed = (pool.refcount > 0) & (refcount == 0)  # [P]
  slot_on_stack = pool.num_free + jnp.cumsum(freed.astype(jnp.int32)) - 1
  free_stack = pool.free_stack.at[jnp.where(freed, slot_on_stack, num_pages)].set(
      jnp.arange(num_pages, dtype=jnp.int32), mode='drop')
  return pool.replace(refcount=refcount, free_stack=free_stack,
                      num_free=pool.num_free + jnp.sum(freed.astype(jnp.int32)))


def pages_in_use(pool: PagePool) -> jax.Array:
  """[] int32: allocated pages."""
  return pool.refcount.shape[0] - pool.num_free


def grow(pool: PagePool, slots: Slots, active: jax.Array, q: int, page_size: int,
         sink: int) -> tuple[PagePool, Slots]:
  """Gives every `active [S]` slot the pages covering its next `q` positions (`length .. length +
  q - 1`): 1 for AR and APAR, a verification window for a speculative step. Pages a slot already
  holds past `length` (an earlier window's) count, so no slot is given more than it needs.
  """
  s, width = slots.page_table.shape
  target = pages_for(slots.length + q, page_size)  # [S]
  for _ in range(-(-q // page_size)):  # pages_for(a + q) - pages_for(a) <= ceil(q / page_size)
    want = active & (slots.num_pages < target) & (slots.num_pages < width)
    pool, pages = allocate(pool, want, slots.request, sink)
    col = jnp.where(want, slots.num_pages, width)  # out of bounds = dropped
    table = slots.page_table.at[jnp.arange(s), col].set(pages, mode='drop')
    slots = slots.replace(page_table=table, num_pages=slots.num_pages + want)
  return pool, slots


def share_prefix(pool: PagePool, slots: Slots, spawn: jax.Array) -> tuple[PagePool, Slots]:
  """Children being spawned (`spawn [S]`, parent in `parent_slot`) reference every page of their
  parent that covers their `length` tokens, the partially filled last one included (refcount up)."""
  s, width = slots.page_table.shape
  cols = jnp.arange(width)[None, :]
  parent_rows = slots.page_table[jnp.clip(slots.parent_slot, 0, s - 1)]  # [S, width]
  shared = spawn[:, None] & (cols < slots.num_pages[:, None])  # [S, width]
  pool = retain(pool, parent_rows, shared)
  return pool, slots.replace(page_table=jnp.where(shared, parent_rows, slots.page_table))


def unshare_last(pool: PagePool, slots: Slots, chosen: jax.Array, page_size: int,
                 sink: int) -> tuple[PagePool, Slots, jax.Array, jax.Array]:
  """Gives `chosen [N]` slots (sink-padded slot indices) a fresh page in place of their shared
  partially filled last page (copy on write). Returns (pool, slots, src [N], dst [N]): copy the
  contents src -> dst; rows with dst == sink copy nothing.
  """
  s, width = slots.page_table.shape
  valid = chosen < s
  row = jnp.clip(chosen, 0, s - 1)
  col = jnp.clip(slots.length[row] // page_size, 0, width - 1)  # [N] the partial page's column
  src = jnp.where(valid, slots.page_table[row, col], sink)
  pool, dst = allocate(pool, valid, slots.request[row], sink)
  pool = release(pool, src, valid)  # the child's reference to its parent's page
  table = slots.page_table.at[jnp.where(valid, row, s), col].set(dst, mode='drop')
  return pool, slots.replace(page_table=table), src, dst


def release_slots(pool: PagePool, slots: Slots, finishing: jax.Array,
                  sink: int) -> tuple[PagePool, Slots]:
  """Drops every page reference of the `finishing [S]` slots and resets their tables to the sink."""
  width = slots.page_table.shape[1]
  held = finishing[:, None] & (jnp.arange(width)[None, :] < slots.num_pages[:, None])
  pool = release(pool, slots.page_table, held)
  table = jnp.where(finishing[:, None], sink, slots.page_table)
  return pool, slots.replace(page_table=table, num_pages=jnp.where(finishing, 0, slots.num_pages))
