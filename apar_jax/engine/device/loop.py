"""The jitted device functions of the engine: the decode chunk (one `while_loop`), admit, prefill.

`run_chunk` frees the slots the host has drained, then runs up to `num_steps` decode steps while any
branch is unfinished. The host calls it once per chunk, so there is one device->host transfer per
chunk, not per token. The functions here are written for one data shard; `compiled_functions` lifts
them to the state stacked over the mesh's data axis (`data_shards`) and jits them once per (model
config, capacities, control ids, mode, attention implementation, shards, mesh), so several `Engine`s
of one config share them.
"""

import dataclasses
import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections

from apar_jax.engine.device import data_shards, prefill, row_buckets, spec_state
from apar_jax.engine.device.cancel import cancel_requests
from apar_jax.engine.device.spec_config import SpecConfig
from apar_jax.engine.device.state import DONE, FREE, Capacities, EngineState, is_active, reset_state
from apar_jax.engine.device.step import decode_step
from apar_jax.engine.device.step_config import StepConfig
from apar_jax.engine.device.step_hints import StepHints, loop_flags
from apar_jax.engine.device.token_choice import ControlIds
from apar_jax.model import build_model


def step_fn(cfg: StepConfig, rows: Optional[int] = None
            ) -> Callable[[Any, EngineState, StepHints], EngineState]:
  """One shard's decode step (speculative modes: params = (base params, drafter params)), its
  forward on `rows` rows (`row_buckets`; None = every slot). A shard with no unfinished branch is
  left as it was (its step counter included). `hints`: shared by all shards (`step_hints.loop_flags`)."""
  def step(params: Any, state: EngineState, hints: StepHints) -> EngineState:
    new = decode_step(params, state, cfg, hints, rows)
    return new.replace(steps=jnp.where(jnp.any(is_active(state.slots.status)), new.steps,
                                       state.steps))
  return step


def run_chunk(params: Any, state: EngineState, drained: jax.Array, num_steps: jax.Array,
              step: Callable[[Any, EngineState, StepHints], EngineState],
              rows: Optional[int] = None) -> EngineState:
  """Frees the drained slots, then steps while any branch is unfinished, at most `num_steps` times,
  and (with `rows`, the step's row bucket) only while every shard's unfinished branches fit in it.

  Works on one shard's state or on the stacked state `[D, ...]` (`step` lifted by
  `data_shards.per_shard`, the hints unbatched): the loop's condition and the step hints look at
  every shard, so all devices loop and branch alike.
  drained [S] or [D, S] bool: DONE slots whose outputs the host has read (they become FREE).
  """
  status = jnp.where(drained & (state.slots.status == DONE), FREE, state.slots.status)
  state = state.replace(slots=state.slots.replace(status=status))

  def flags(st):
    unfinished, hints = loop_flags(st)
    if rows is not None:
      unfinished = unfinished & row_buckets.fits(st, rows)  # a wider bucket: end the chunk
    return unfinished, hints

  def cond(carry):
    _, i, unfinished, _ = carry
    return (i < num_steps) & unfinished

  def body(carry):
    st, i, _, hints = carry
    st = step(params, st, hints)
    return (st, i + 1, *flags(st))

  state, *_ = jax.lax.while_loop(cond, body, (state, jnp.zeros((), jnp.int32), *flags(state)))
  return state


@dataclasses.dataclass(frozen=True)
class EngineFunctions:
  """Jitted entry points over the stacked state `[D, ...]` (see `data_shards`); the state argument is
  donated in each. Per-shard host inputs carry a leading `[D]` axis; `active [D]` says which shards
  a call touches (the others keep their state)."""
  run_chunk: Callable  # (params, state, drained [D, S], num_steps [], rows=bucket, draft=True)
  buckets: tuple[int, ...]  # the row buckets `rows` may take (`row_buckets`); (S,) = off
  drafting_buckets: tuple[int, ...]  # buckets whose tree drafts: `draft=False` verifies the root
  admit: Callable  # (state, active, slot, request, prompt_len, last_token, max_new, temp, top_k,
  #                   top_p, repetition_penalty, no_repeat_ngram, penalize_symbols,
  #                   key [D, 2]) -> state
  #                   (scalars per shard: [D])
  prefill_chunk: Callable  # (params, state, active [D], slot [D], tokens [D, C], start [D]) -> state
  reset: Callable  # (state) -> empty state reusing the KV pools
  cancel: Callable  # (state, cancel [D, R] bool) -> state with those requests' branches ended
  summary: Callable  # (state) -> the host summary's arrays (each [D, ...]), readable on every process
  init: Callable  # () -> an empty state, built in place on the mesh

  def cache_sizes(self) -> dict[str, int]:
    """Number of compiled versions of each function: 1 each after the first run, `run_chunk` one
    per row bucket used, and one more per drafting bucket run without its draft (at most
    `len(buckets) + len(drafting_buckets)`), `cancel` 0 until a request is cancelled."""
    return {f.name: getattr(self, f.name)._cache_size() for f in dataclasses.fields(self)
            if f.name not in ('buckets', 'drafting_buckets')}


def summary_arrays(state: EngineState) -> dict[str, jax.Array]:
  """One shard's arrays the host reads after a chunk (slot and request tables, pool counters)."""
  sl, rq, pool = state.slots, state.requests, state.pool
  return dict(status=sl.status, request=sl.request, branch=sl.branch,
              parent_branch=sl.parent_branch, fork_point=sl.fork_point, depth=sl.depth,
              tokens=sl.tokens, num_out=sl.num_out, max_len=sl.max_len, num_pages=sl.num_pages,
              length=sl.length, first_step=sl.first_step, last_step=sl.last_step,
              live_branches=rq.live_branches, decode_steps=rq.decode_steps, forks=rq.forks,
              refused_forks=rq.refused_forks, max_live=rq.max_live, peak_pages=rq.peak_pages,
              attended=rq.attended, branch_steps=rq.branch_steps, num_free=pool.num_free,
              min_refcount=jnp.min(pool.refcount), max_refcount=jnp.max(pool.refcount),
              steps=state.steps, global_peak=state.peak_pages,
              **({} if state.spec is None else {'drafted': state.spec.drafted,
                                                'by_source': state.spec.by_source,
                                                'tally': state.spec.tally}))


def _only_if(active: jax.Array, new: EngineState, old: EngineState) -> EngineState:
  """`new` on an active shard, `old` elsewhere, for everything but the KV pools (the caller writes
  an inactive shard's K/V to the sink page, so `new.caches` is right either way: no select over
  them)."""
  keep = lambda a, b: jnp.where(active, a, b)  # noqa: E731
  return jax.tree.map(keep, new.replace(caches=()), old.replace(caches=())).replace(
      caches=new.caches)


@functools.lru_cache(maxsize=16)
def compiled_functions(model_cfg: ml_collections.FrozenConfigDict, caps: Capacities,
                       ids: ControlIds, apar: bool, attention_impl: str,
                       spec: Optional[SpecConfig] = None, shards: int = 1,
                       mesh: Optional[jax.sharding.Mesh] = None,
                       row_buckets_on: bool = True) -> EngineFunctions:
  """Builds the jitted functions once per key (several `Engine`s of one config share them).

  With `spec` (a speculative mode) every function takes params = (base params, drafter params).
  `shards` data shards over `mesh` (see `data_shards`)."""
  model = build_model(ml_collections.ConfigDict(model_cfg.to_dict()))
  cfg = StepConfig(model, caps, ids, apar, attention_impl)
  history = spec is not None and spec_state.uses_history(spec)
  recycling = spec is not None and spec.drafter.kind == 'token_recycling'
  base_params = (lambda p: p[0]) if spec is not None else (lambda p: p)  # noqa: E731
  def step_cfg(rows: int, draft: bool) -> StepConfig:
    if spec is None:
      return cfg
    bucket = spec.for_rows(rows)  # the bucket's tree, or the root alone while drafting is off
    return dataclasses.replace(cfg, spec=bucket if draft else bucket.without_draft())

  def adm(state, active, slot, request, prompt_len, last_token, *args):
    new = prefill.admit(state, slot, request, prompt_len, last_token, *args, caps=caps)
    if history:
      new = new.replace(spec=spec_state.history_admit(new.spec, slot, prompt_len, last_token))
    return _only_if(active, new, state)

  def pre(params, state, active, slot, tokens, start):
    new, logits = prefill.prefill_chunk(base_params(params), state, active, slot, tokens, start,
                                        model, caps, attention_impl)
    prompt = start + jnp.arange(tokens.shape[0]) < new.slots.length[slot]  # [C] not padding
    if history:
      new = new.replace(spec=spec_state.history_prefill(new.spec, slot, tokens, start,
                                                        new.slots.length[slot]))
    if recycling:  # the prompt's successors as the model ranks them
      new = new.replace(spec=spec_state.recycle_prompt(new.spec, tokens, logits, active & prompt))
    return _only_if(active, new, state)

  reset = lambda state: reset_state(state.caches, caps).replace(spec=state.spec)  # noqa: E731

  lift = lambda fn, *stacked: data_shards.per_shard(fn, shards, stacked)  # noqa: E731

  def run(params, state, drained, num_steps, rows=None, draft=True):  # static: one compile each
    rows = None if rows is None or rows >= caps.max_slots else int(rows)
    step = step_fn(step_cfg(caps.max_slots if rows is None else rows, draft), rows)
    if shards == 1:  # the loop inside the lift: one shard's program, as without shards
      return lift(functools.partial(run_chunk, step=step, rows=rows), False, True, True, False)(
          params, state, drained, num_steps)
    # the loop outside: one trip count and one set of step hints for every shard
    return run_chunk(params, state, drained, num_steps, lift(step, False, True, False), rows)
  empty = lambda: data_shards.empty_state(caps, model_cfg, spec, shards)  # noqa: E731
  placed = data_shards.state_shardings(jax.eval_shape(empty), mesh, shards)
  jit = lambda fn, donate: jax.jit(fn, donate_argnums=donate, out_shardings=placed)  # noqa: E731
  buckets = row_buckets.buckets(caps.max_slots) if row_buckets_on else (caps.max_slots,)
  return EngineFunctions(
      run_chunk=jax.jit(run, donate_argnums=(1,), static_argnames=('rows', 'draft'),
                        out_shardings=placed),
      buckets=buckets,
      drafting_buckets=tuple(b for b in buckets if spec is not None and spec.for_rows(b).drafts),
      admit=jit(lift(adm, *(True,) * 14), (0,)),
      prefill_chunk=jit(lift(pre, False, True, True, True, True, True), (1,)),
      reset=jit(lift(reset, True), (0,)),
      cancel=jit(lift(functools.partial(cancel_requests, caps=caps), True, True), (0,)),
      summary=data_shards.replicated_fn(jax.vmap(summary_arrays), mesh),
      init=jit(empty, ()))
