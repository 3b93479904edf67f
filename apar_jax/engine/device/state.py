"""The engine's device state: one fixed-shape pytree carried by the decode `while_loop`.

Capacities (all static): S slots, P pages of `page_size` tokens per layer, `pages_per_slot` table
columns, R requests, `max_new_tokens` outputs per slot. The KV pool of each layer has P + 1 pages:
page P is a *sink* that is never allocated; unassigned page-table entries point at it, so stray
writes (the padding of a prefill chunk) land there and reads of unassigned entries stay in bounds.
Positions a slot reads are always < its length, so the sink's contents never matter.

Slot life cycle: FREE -> LIVE (admitted root) -> DONE (EOS/budget; pages released) -> FREE (after
the host drained its outputs). A child: FREE -> PENDING (claimed by a fork, pages reserved) ->
COPYING (shares all its parent's pages, the partial last one included) -> LIVE (that page copied
into its own) -> DONE -> FREE. At most `fork_copies_per_step` pages are copied per step; other
children wait COPYING.
"""

import dataclasses
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import ml_collections

from apar_jax.model import PagedCache

FREE, LIVE, PENDING, DONE, COPYING = 0, 1, 2, 3, 4


@dataclasses.dataclass(frozen=True)
class Capacities:
  """Static sizes of the engine (hashable: part of the compile key)."""
  max_slots: int
  num_pages: int
  page_size: int
  pages_per_slot: int
  max_requests: int
  max_new_tokens: int
  chunk_steps: int
  prefill_chunk: int
  max_live_branches: int
  max_depth: int
  fork_copies_per_step: int
  slack: int = 0  # positions a step may write past a branch's last budgeted token (speculative: Q-1)
  #                  they get their own page-table columns, so budgets match the non-speculative mode

  @classmethod
  def from_config(cls, engine_cfg: ml_collections.ConfigDict, slack: int = 0) -> 'Capacities':
    caps = cls(**{f.name: int(engine_cfg[f.name]) for f in dataclasses.fields(cls)
                  if f.name != 'slack'}, slack=int(slack))
    caps.validate()
    return caps

  def validate(self) -> None:
    for f in dataclasses.fields(self):
      minimum = 0 if f.name in ('max_depth', 'slack') else 1
      if getattr(self, f.name) < minimum:
        raise ValueError(f'config.engine.{f.name} must be >= {minimum}, '
                         f'got {getattr(self, f.name)}')

  @property
  def slot_capacity(self) -> int:
    """Tokens (positions) one slot can hold."""
    return self.pages_per_slot * self.page_size

  @property
  def table_width(self) -> int:
    """Page-table columns: `pages_per_slot` plus the speculative window's pages."""
    return self.pages_per_slot + -(-self.slack // self.page_size)

  @property
  def sink(self) -> int:
    """Index of the sink page (never allocated)."""
    return self.num_pages


@flax.struct.dataclass
class PagePool:
  """Page bookkeeping (the K/V contents live in `EngineState.caches`)."""
  refcount: jax.Array  # [P] int32: slots referencing each page
  free_stack: jax.Array  # [P] int32: free_stack[:num_free] are the free pages
  num_free: jax.Array  # [] int32
  owner: jax.Array  # [P] int32: request index that allocated the page (stats only)


@flax.struct.dataclass
class Slots:
  """Per-slot (per-branch) state."""
  status: jax.Array  # [S] int32: FREE / LIVE / PENDING / COPYING / DONE
  request: jax.Array  # [S] int32: request index in [0, R)
  branch: jax.Array  # [S] int32: branch id within its request (root = 0)
  parent_branch: jax.Array  # [S] int32: the parent's branch id (-1 for the root)
  parent_slot: jax.Array  # [S] int32: the parent's slot while PENDING
  depth: jax.Array  # [S] int32: 0 for the root
  fork_point: jax.Array  # [S] int32: index of the spawning `[Fork]` in the parent's outputs
  length: jax.Array  # [S] int32: tokens in the slot's view = position of `last_token`
  last_token: jax.Array  # [S] int32: token fed at the next step
  budget: jax.Array  # [S] int32: max tokens this branch may emit
  max_len: jax.Array  # [S] int32: positions the slot may write (length at start + budget + slack)
  num_pages: jax.Array  # [S] int32: page-table entries in use (shared or own)
  page_table: jax.Array  # [S, table_width] int32 (sink where unassigned)
  key: jax.Array  # [S, 2] uint32: raw PRNG key of the branch
  tokens: jax.Array  # [S, max_new_tokens] int32: emitted tokens
  num_out: jax.Array  # [S] int32
  first_step: jax.Array  # [S] int32: the request's decode step (0-based) of the branch's first token
  last_step: jax.Array  # [S] int32: ... of its latest token (valid once num_out > 0)


@flax.struct.dataclass
class Requests:
  """Per-request settings and statistics."""
  live_branches: jax.Array  # [R] int32: LIVE + PENDING + COPYING slots
  next_branch: jax.Array  # [R] int32: next branch id to hand out
  max_new: jax.Array  # [R] int32: per-branch budget
  temperature: jax.Array  # [R] f32
  top_k: jax.Array  # [R] int32
  top_p: jax.Array  # [R] f32
  repetition_penalty: jax.Array  # [R] f32: 1.0 = off (`repeat_penalty`, over each branch's outputs)
  no_repeat_ngram: jax.Array  # [R] int32: 0 = off
  penalize_symbols: jax.Array  # [R] bool: False = the penalty spares `ControlIds.symbols`
  decode_steps: jax.Array  # [R] int32: steps in which the request had a live branch
  forks: jax.Array  # [R] int32: children spawned
  refused_forks: jax.Array  # [R] int32: `[Fork]` chosen but refused (no slot/page/branch quota)
  max_live: jax.Array  # [R] int32: most branches live at once
  peak_pages: jax.Array  # [R] int32: most pages allocated by the request at once
  attended: jax.Array  # [R] int32: KV tokens attended by its queries, summed over steps
  branch_steps: jax.Array  # [R] int32: (live branch, step) pairs: tokens emitted / this = accepted


@flax.struct.dataclass
class EngineState:
  caches: tuple  # n_layers x PagedCache(k_pages/v_pages [P + 1, page_size, Hkv, D])
  pool: PagePool
  slots: Slots
  requests: Requests
  steps: jax.Array  # [] int32: decode steps run since init
  peak_pages: jax.Array  # [] int32: most pages in use at once, all requests together
  spec: Any = None  # speculative modes: `spec_state.SpecSlots` (drafts, token history)


def init_caches(caps: Capacities, model_cfg: Any) -> tuple:
  """Zeroed KV pools: n_layers x PagedCache([P + 1, page_size, Hkv, D]) (page P is the sink)."""
  dtype = jnp.dtype(model_cfg.dtype)
  return tuple(PagedCache.zeros(caps.num_pages + 1, caps.page_size, model_cfg.n_kv_heads,
                                model_cfg.head_dim, dtype) for _ in range(model_cfg.n_layers))


def init_state(caps: Capacities, model_cfg: Any) -> EngineState:
  """An empty state: every slot FREE, every page free."""
  return reset_state(init_caches(caps, model_cfg), caps)


def reset_state(caches: tuple, caps: Capacities) -> EngineState:
  """An empty state around existing KV pools (their contents are never read before written)."""
  s, p, r = caps.max_slots, caps.num_pages, caps.max_requests
  zs = lambda: jnp.zeros((s,), jnp.int32)  # noqa: E731
  zr = lambda: jnp.zeros((r,), jnp.int32)  # noqa: E731
  pool = PagePool(refcount=jnp.zeros((p,), jnp.int32),
                  free_stack=jnp.arange(p - 1, -1, -1, dtype=jnp.int32),  # page 0 on top
                  num_free=jnp.asarray(p, jnp.int32),
                  owner=jnp.zeros((p,), jnp.int32))
  slots = Slots(status=zs(), request=zs(), branch=zs(), parent_branch=zs() - 1,
                parent_slot=zs() - 1, depth=zs(), fork_point=zs() - 1, length=zs(), last_token=zs(),
                budget=zs(), max_len=zs(), num_pages=zs(),
                page_table=jnp.full((s, caps.table_width), caps.sink, jnp.int32),
                key=jnp.zeros((s, 2), jnp.uint32),
                tokens=jnp.zeros((s, caps.max_new_tokens), jnp.int32), num_out=zs(),
                first_step=zs() - 1, last_step=zs() - 1)
  requests = Requests(live_branches=zr(), next_branch=zr(), max_new=zr(),
                      temperature=jnp.zeros((r,), jnp.float32), top_k=zr(),
                      top_p=jnp.ones((r,), jnp.float32),
                      repetition_penalty=jnp.ones((r,), jnp.float32), no_repeat_ngram=zr(),
                      penalize_symbols=jnp.ones((r,), bool),
                      decode_steps=zr(), forks=zr(),
                      refused_forks=zr(), max_live=zr(), peak_pages=zr(), attended=zr(),
                      branch_steps=zr())
  return EngineState(caches, pool, slots, requests, jnp.zeros((), jnp.int32),
                     jnp.zeros((), jnp.int32))


def pages_for(length: jax.Array, page_size: int) -> jax.Array:
  """Pages needed to hold `length` tokens (ceil division)."""
  return (length + page_size - 1) // page_size


def outstanding_pages(slots: Slots, page_size: int) -> jax.Array:
  """[] int32: pages active slots may still allocate before they reach `max_len`.

  A PENDING or COPYING child whose prefix ends inside a page still needs the page that page is
  copied into. Forks and admissions only happen when the free pages cover this reserve plus their
  own worst case, so a live branch never finds the pool empty.
  """
  status = slots.status
  waiting = ((status == PENDING) | (status == COPYING)) & (slots.length % page_size != 0)
  per_slot = pages_for(slots.max_len, page_size) - slots.num_pages + waiting
  return jnp.sum(jnp.where(is_active(status), jnp.maximum(per_slot, 0), 0))


def is_active(status: jax.Array) -> jax.Array:
  """Slots that belong to an unfinished branch (LIVE, PENDING or COPYING)."""
  return (status == LIVE) | (status == PENDING) | (status == COPYING)
