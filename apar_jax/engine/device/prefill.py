"""Putting a request into a slot: `admit` (slot, pages, settings) and chunked `prefill_chunk`.

A prompt of L tokens is prefilled up to L - 1 tokens; its last token becomes the slot's `last_token`
so the first answer token comes out of the decode loop like every other one (one code path for bans,
sampling, stops and statistics). Prefill runs `[1, C]` causal blocks through `PagedSpec`, with the
slot's page-table row widened by sink columns so a padded last chunk never indexes past the table:
padding lands in the slot's own unfinished page (overwritten before it is read) or in the sink.
"""

from typing import Any

import jax
import jax.numpy as jnp

from apar_jax.engine.device import page_allocator
from apar_jax.engine.device.state import LIVE, Capacities, EngineState, pages_for
from apar_jax.model import PagedSpec, Transformer


def admit(state: EngineState, slot: jax.Array, request: jax.Array, prompt_len: jax.Array,
          last_token: jax.Array, max_new: jax.Array, temperature: jax.Array, top_k: jax.Array,
          top_p: jax.Array, repetition_penalty: jax.Array, no_repeat_ngram: jax.Array,
          penalize_symbols: jax.Array, key: jax.Array, caps: Capacities) -> EngineState:
  """Makes `slot` the LIVE root of request index `request` and allocates its prompt pages.

  Scalars: slot, request, prompt_len (L >= 1), last_token (prompt[L-1]), max_new (budget); key [2]
  uint32. Resets the request's statistics. The caller has checked that the slot is free and that the
  free pages cover the reserve of live branches plus pages_for(L - 1 + max_new).
  """
  width = caps.table_width
  length = prompt_len - 1
  want = jnp.arange(width) < pages_for(length, caps.page_size)  # [width]
  pool, pages = page_allocator.allocate(state.pool, want, jnp.full((width,), request), caps.sink)
  sl = state.slots
  set_ = lambda a, v: a.at[slot].set(v)  # noqa: E731
  slots = sl.replace(
      status=set_(sl.status, LIVE), request=set_(sl.request, request), branch=set_(sl.branch, 0),
      parent_branch=set_(sl.parent_branch, -1), parent_slot=set_(sl.parent_slot, -1),
      depth=set_(sl.depth, 0), fork_point=set_(sl.fork_point, -1), length=set_(sl.length, length),
      last_token=set_(sl.last_token, last_token), budget=set_(sl.budget, max_new),
      max_len=set_(sl.max_len, length + max_new + caps.slack), num_pages=set_(sl.num_pages, jnp.sum(want)),
      page_table=set_(sl.page_table, pages), key=set_(sl.key, key),
      tokens=set_(sl.tokens, jnp.zeros_like(sl.tokens[0])), num_out=set_(sl.num_out, 0))
  rq = state.requests
  zero = lambda a: a.at[request].set(0)  # noqa: E731
  requests = rq.replace(
      live_branches=rq.live_branches.at[request].set(1),
      next_branch=rq.next_branch.at[request].set(1),
      max_new=rq.max_new.at[request].set(max_new),
      temperature=rq.temperature.at[request].set(temperature),
      top_k=rq.top_k.at[request].set(top_k), top_p=rq.top_p.at[request].set(top_p),
      repetition_penalty=rq.repetition_penalty.at[request].set(repetition_penalty),
      no_repeat_ngram=rq.no_repeat_ngram.at[request].set(no_repeat_ngram),
      penalize_symbols=rq.penalize_symbols.at[request].set(penalize_symbols),
      decode_steps=zero(rq.decode_steps), forks=zero(rq.forks),
      refused_forks=zero(rq.refused_forks), max_live=zero(rq.max_live),
      peak_pages=rq.peak_pages.at[request].set(jnp.sum(want)), attended=zero(rq.attended),
      branch_steps=zero(rq.branch_steps))
  return state.replace(pool=pool, slots=slots, requests=requests,
                       peak_pages=jnp.maximum(state.peak_pages,
                                              page_allocator.pages_in_use(pool)))


def prefill_chunk(params: Any, state: EngineState, active: jax.Array, slot: jax.Array,
                  tokens: jax.Array, start: jax.Array, model: Transformer, caps: Capacities,
                  attention_impl: str) -> tuple[EngineState, jax.Array]:
  """Writes the K/V of `tokens [C]` at positions start .. start + C - 1 of `slot` (if `active`;
  else into the sink page: a data shard with nothing to prefill runs the same program). Returns
  (state, logits [C, V] at those positions: token recycling learns from them, and XLA drops the
  LM head where no caller reads them)."""
  c = tokens.shape[0]
  extra = pages_for(c, caps.page_size) + 1
  own = jnp.where(active, state.slots.page_table[slot], caps.sink)
  row = jnp.concatenate([own, jnp.full((extra,), caps.sink, jnp.int32)])[None]  # [1, width+extra]
  spec = PagedSpec(row, start[None], None, write=None, impl=attention_impl)
  positions = (start + jnp.arange(c, dtype=jnp.int32))[None]
  out = model.apply({'params': params}, tokens[None], positions, spec, state.caches)
  return state.replace(caches=out.caches), out.logits[0]
