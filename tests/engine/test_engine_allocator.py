"""Page allocator: unit checks and a property test over random admit/grow/fork/finish sequences."""


import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.engine.device import page_allocator
from apar_jax.engine.device.state import FREE, LIVE, Capacities, pages_for, reset_state

CAPS = Capacities(max_slots=6, num_pages=20, page_size=4, pages_per_slot=8, max_requests=2,
                  max_new_tokens=8, chunk_steps=4, prefill_chunk=4, max_live_branches=8,
                  max_depth=2, fork_copies_per_step=2)
S, P, PS, W, SINK = CAPS.max_slots, CAPS.num_pages, CAPS.page_size, CAPS.pages_per_slot, CAPS.sink


def _empty():
  state = reset_state((), CAPS)
  return state.pool, state.slots


def test_allocate_and_release_round_trip():
  pool, _ = _empty()
  pool, pages = page_allocator.allocate(pool, jnp.array([True, False, True, True]),
                                        jnp.zeros(4, jnp.int32), SINK)
  pages = np.asarray(pages)
  assert pages[1] == SINK and len({*pages[[0, 2, 3]]}) == 3
  assert int(pool.num_free) == P - 3
  pool = page_allocator.retain(pool, jnp.asarray(pages[[0]]), jnp.array([True]))
  assert int(pool.refcount[pages[0]]) == 2
  pool = page_allocator.release(pool, jnp.asarray(pages), jnp.array([True, False, True, True]))
  assert int(pool.num_free) == P - 1  # pages[0] still has one reference
  pool = page_allocator.release(pool, jnp.asarray(pages[[0]]), jnp.array([True]))
  assert int(pool.num_free) == P
  assert sorted(np.asarray(pool.free_stack).tolist()) == list(range(P))
  assert int(jnp.min(pool.refcount)) == 0


def test_allocate_more_than_free_gives_sink():
  pool, _ = _empty()
  pool, pages = page_allocator.allocate(pool, jnp.ones((P + 3,), bool), jnp.zeros(P + 3, jnp.int32),
                                        SINK)
  assert int(pool.num_free) == 0
  assert np.sum(np.asarray(pages) == SINK) == 3


def test_grow_gives_a_window_and_never_more_than_the_next_positions_need():
  pool, slots = _admit(*_empty(), 0, 6)  # 6 positions: 2 pages
  active = jnp.arange(S) == 0
  pool, slots = page_allocator.grow(pool, slots, active, 5, PS, SINK)  # positions 6 .. 10
  assert int(slots.num_pages[0]) == 3 and int(pool.num_free) == P - 3
  slots = slots.replace(length=slots.length.at[0].set(8))  # two tokens kept: a page boundary
  pool, slots = page_allocator.grow(pool, slots, active, 1, PS, SINK)  # position 8: has its page
  assert int(slots.num_pages[0]) == 3 and int(pool.num_free) == P - 3
  slots = slots.replace(length=slots.length.at[0].set(12))
  pool, slots = page_allocator.grow(pool, slots, active, 1, PS, SINK)
  assert int(slots.num_pages[0]) == 4 and int(slots.page_table[0, 3]) != SINK


# ---- jitted slot-level operations (one compile each) --------------------------------------------
@jax.jit
def _admit(pool, slots, slot, length):
  want = jnp.arange(W) < pages_for(length, PS)
  pool, pages = page_allocator.allocate(pool, want, jnp.zeros((W,), jnp.int32), SINK)
  slots = slots.replace(status=slots.status.at[slot].set(LIVE),
                        length=slots.length.at[slot].set(length),
                        num_pages=slots.num_pages.at[slot].set(jnp.sum(want)),
                        page_table=slots.page_table.at[slot].set(pages))
  return pool, slots


@jax.jit
def _grow(pool, slots, slot):
  active = jnp.arange(S) == slot
  pool, slots = page_allocator.grow(pool, slots, active, 1, PS, SINK)
  return pool, slots.replace(length=slots.length + active)


@jax.jit
def _fork(pool, slots, parent, child):
  """The child shares every page of the parent's current length (the partial one too)."""
  slots = slots.replace(length=slots.length.at[child].set(slots.length[parent]),
                        parent_slot=slots.parent_slot.at[child].set(parent),
                        num_pages=slots.num_pages.at[child].set(slots.num_pages[parent]))
  pool, slots = page_allocator.share_prefix(pool, slots, jnp.arange(S) == child)
  return pool, slots.replace(status=slots.status.at[child].set(LIVE))


@jax.jit
def _unshare(pool, slots, child):
  """Copy on write: the child's partial last page becomes its own."""
  chosen = jnp.asarray([child, S])  # padded with "none", as the engine does
  return page_allocator.unshare_last(pool, slots, chosen, PS, SINK)


@jax.jit
def _finish(pool, slots, slot):
  pool, slots = page_allocator.release_slots(pool, slots, jnp.arange(S) == slot, SINK)
  return pool, slots.replace(status=slots.status.at[slot].set(FREE))


def _check_invariants(pool, slots):
  refcount = np.asarray(pool.refcount)
  num_free = int(pool.num_free)
  free = np.asarray(pool.free_stack)[:num_free]
  status, tables, npages = (np.asarray(x)
                            for x in (slots.status, slots.page_table, slots.num_pages))
  assert (refcount >= 0).all(), refcount
  assert len(set(free.tolist())) == num_free, 'a page is twice on the free stack'
  assert (refcount[free] == 0).all(), 'a free page is referenced'
  assert num_free + int(np.sum(refcount > 0)) == P, 'a page is neither free nor referenced'
  expected = np.zeros(P, np.int64)
  for s in np.nonzero(status == LIVE)[0]:
    held = tables[s, :npages[s]]
    assert (held < P).all(), 'a live slot references the sink'
    assert npages[s] == pages_for(int(slots.length[s]), PS), 'page count does not cover length'
    np.add.at(expected, held, 1)
  np.testing.assert_array_equal(refcount, expected)


OPS = st.lists(st.tuples(st.sampled_from(['admit', 'grow', 'fork', 'finish']),
                         st.integers(0, S - 1), st.integers(0, S - 1), st.integers(1, 12)),
               min_size=1, max_size=40)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(OPS)
def test_random_admit_grow_fork_finish_keeps_page_accounting(ops):
  pool, slots = _empty()
  capacity = W * PS
  for op, a, b, n in ops:
    status = np.asarray(slots.status)
    length = np.asarray(slots.length)
    free = int(pool.num_free)
    if op == 'admit' and status[a] == FREE and pages_for(n, PS) <= free:
      pool, slots = _admit(pool, slots, a, n)
    elif op == 'grow' and status[a] == LIVE and length[a] < capacity and (
        length[a] % PS != 0 or free > 0):
      pool, slots = _grow(pool, slots, a)
    elif op == 'fork' and status[a] == LIVE and status[b] == FREE:
      pool, slots = _fork(pool, slots, a, b)
      if length[a] % PS and free > 0 and n % 2:  # else the child keeps sharing (a waiting copy)
        _check_invariants(pool, slots)
        pool, slots, src, dst = _unshare(pool, slots, b)
        assert int(dst[0]) < P and int(dst[1]) == SINK
        assert int(src[0]) == int(slots.page_table[a, length[a] // PS]) != int(dst[0])
    elif op == 'finish' and status[a] == LIVE:
      pool, slots = _finish(pool, slots, a)
    _check_invariants(pool, slots)
  for s in np.nonzero(np.asarray(slots.status) == LIVE)[0]:
    pool, slots = _finish(pool, slots, int(s))
  _check_invariants(pool, slots)
  assert int(pool.num_free) == P and int(np.max(np.asarray(pool.refcount))) == 0
