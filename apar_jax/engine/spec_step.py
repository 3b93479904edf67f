"""One speculative step over all S slots: draft tree -> one verifying forward -> accept -> compact ->
(APAR) fork -> emit 1..D+1 tokens -> next draft. Shapes never change; per-slot accepted counts do.

Each LIVE slot feeds its tree's T candidate tokens (node 0 = `last_token`) at positions
`length + depth`, their K/V written at `length .. length + Q - 1` (Q = T, or T(1 + h) with Hidden
Transfer's pseudo rows, h = the tree's depth) under the tree mask. The mode's bans are applied per node exactly as AR/APAR
apply them to a single token (`[Child]` always; `[Fork]` always in non-APAR modes, by `fork.rule_ban`
evaluated at the node's depth in APAR modes), so greedy acceptance reproduces AR/APAR token for token
and rejection sampling draws from the same distributions. Acceptance halts at `[Fork]`/EOS, which is
then the step's last token: the fork is granted (or refused and re-chosen) and the branch ends exactly
as in APAR/AR mode, the fork point being the parent's output index of that `[Fork]`. Pages for the
whole window are allocated before the forward and reserved in advance (`caps.slack`). The tree is
the row bucket's (`SpecConfig.for_rows`); the root-only tree runs AR's / APAR's own step.
"""

import dataclasses
from typing import Any, Optional

import jax
import jax.numpy as jnp

from apar_jax.engine import fork, page_allocator, row_buckets, spec_state
from apar_jax.engine.spec_config import SpecConfig
from apar_jax.engine.state import DONE, LIVE, PENDING, EngineState, PagePool, Slots, pages_for
from apar_jax.engine.step import StepConfig, decode_step, record_stats, stamp_steps
from apar_jax.engine.step_hints import StepHints, refine_if
from apar_jax.engine.token_choice import ban_column, choose, step_keys
from apar_jax.model import PagedSpec
from apar_jax.speculative import hidden_transfer, medusa, token_recycling
from apar_jax.speculative.acceptance import Acceptance, greedy_accept, typical_accept
from apar_jax.speculative.compaction import compact_paged
from apar_jax.speculative.layer_runner import lm_head_fn
from apar_jax.speculative.rejection import rejection_accept
from apar_jax.speculative.top_tokens import top_tokens


@dataclasses.dataclass(frozen=True)
class SpecStepConfig:
  """A step config plus the speculative mode (hashable)."""
  base: StepConfig
  spec: SpecConfig


def grow_window(pool: PagePool, slots: Slots, live: jax.Array, q: int, page_size: int,
                sink: int) -> tuple[PagePool, Slots]:
  """Gives every live slot the pages covering positions `length .. length + q - 1`."""
  s, width = slots.page_table.shape
  target = pages_for(slots.length + q, page_size)
  for _ in range(-(-q // page_size)):  # pages_for(a + q) - pages_for(a) <= ceil(q / page_size)
    want = live & (slots.num_pages < target) & (slots.num_pages < width)
    pool, pages = page_allocator.allocate(pool, want, slots.request, sink)
    col = jnp.where(want, slots.num_pages, width)
    slots = slots.replace(page_table=slots.page_table.at[jnp.arange(s), col].set(pages, mode='drop'),
                          num_pages=slots.num_pages + want)
  return pool, slots


def drafting_params(dparams: Any, spec: SpecConfig) -> Any:
  """The drafter params the step's tree reads: its first `max_depth` Medusa heads / Hidden Transfer
  maps (a shallower tree pays for fewer LM-head rows and pseudo tokens)."""
  d, h = spec.drafter, spec.tree.max_depth
  if d.kind == 'medusa':
    return {f'head_{i}': dparams[f'head_{i}'] for i in range(h)}
  if d.kind == 'hidden_transfer':
    return {'kernel': dparams['kernel'][:h], 'bias': dparams['bias'][:h]}
  return dparams


def drafts(spec: SpecConfig) -> bool:
  """Whether the step verifies drafted tokens (False for the root-only tree: "no draft", the step
  is AR's / APAR's own, `undrafted_step`)."""
  return spec.tree.num_nodes > 1


def verify_forward(params: Any, dparams: Any, state: EngineState, cand: jax.Array, live: jax.Array,
                   cfg: SpecStepConfig):
  """(logits [S, T, V], hidden [S, T, d] or None, pseudo states [S, T, h, d] or None, caches)."""
  base, spec = cfg.base, cfg.spec
  slots, tree, d = state.slots, spec.tree, spec.drafter
  make_spec = lambda m: PagedSpec(slots.page_table, slots.length, m, write=live,  # noqa: E731
                                  impl=base.attention_impl)
  if d.kind == 'hidden_transfer':
    return hidden_transfer.verify_with_transfer_states(
        base.model, params, drafting_params(dparams, spec), cand, slots.length, tree, make_spec,
        state.caches, d.transfer_layer)
  out = base.model.apply({'params': params}, cand, tree.positions(slots.length),
                         make_spec(tree.block_mask(cand.shape[0])), state.caches,
                         return_hidden=d.kind == 'medusa')
  return out.logits, out.hidden, None, out.caches


def ban_nodes(logits: jax.Array, cand: jax.Array, state: EngineState,
              cfg: SpecStepConfig) -> jax.Array:
  """logits [S, T, V] with the mode's bans at every node (node i decides output num_out + depth)."""
  base = cfg.base
  ids, slots = base.ids, state.slots
  logits = logits.at[..., ids.child].set(-jnp.inf)
  if not base.apar:
    return logits.at[..., ids.fork].set(-jnp.inf)
  depth = jnp.asarray(cfg.spec.tree.depth)[None]  # [1, T]
  wide = lambda x: jnp.broadcast_to(x[:, None], cand.shape)  # noqa: E731
  view = slots.replace(length=slots.length[:, None] + depth, num_out=slots.num_out[:, None] + depth,
                       last_token=cand, depth=wide(slots.depth), budget=wide(slots.budget),
                       request=wide(slots.request))
  ban = fork.rule_ban(view, state.requests, base.caps, ids)  # [S, T]
  return logits.at[..., ids.fork].set(jnp.where(ban, -jnp.inf, logits[..., ids.fork]))


def accept(cand: jax.Array, logits: jax.Array, state: EngineState, live: jax.Array,
           cfg: SpecStepConfig, hints: Optional[StepHints] = None) -> Acceptance:
  """Greedy when every live row is greedy (of every shard, with `hints`), else rejection sampling
  (typical if configured), which gives greedy rows the greedy result."""
  base, tree = cfg.base, cfg.spec.tree
  stops = tuple(base.ids.stop) + ((base.ids.fork,) if base.apar else ())
  slots, req = state.slots, state.requests
  r = slots.request
  keys = step_keys(slots)
  temp, top_k, top_p = req.temperature[r], req.top_k[r], req.top_p[r]
  if cfg.spec.acceptance == 'typical':  # LOSSY; finite bans keep its entropy term NaN-free
    return typical_accept(cand, jnp.maximum(logits, -1e30), tree, keys, temp, stops)
  all_greedy = jnp.all((temp <= 0) | ~live) if hints is None else ~hints.any_sampled
  return jax.lax.cond(all_greedy,
                      lambda: greedy_accept(cand, logits, tree, stops),
                      lambda: rejection_accept(cand, logits, tree, keys, temp, top_k, top_p, stops))


def _at(x: jax.Array, idx: jax.Array) -> jax.Array:
  """x [S, N, ...], idx [S] -> x[s, idx[s]]."""
  return x[jnp.arange(x.shape[0]), jnp.maximum(idx, 0)]


def fork_phase(state: EngineState, acc: Acceptance, logits: jax.Array, live: jax.Array,
               cfg: SpecStepConfig, hints: Optional[StepHints] = None,
               ) -> tuple[EngineState, Acceptance, jax.Array]:
  """Grants forks to slots whose step ends in `[Fork]`; refused ones re-choose with it banned.

  The fork machinery sees each slot as it will be just before its last token (length and num_out
  advanced by num_nodes - 1), so the `[Fork]` lands at `length + num_nodes` and the child's fork
  point is its output index. Returns (state, acceptance, new_child [S]).
  """
  base = cfg.base
  caps, ids = base.caps, base.ids
  slots, requests = state.slots, state.requests
  n = acc.num_nodes
  want = live & (acc.next_token == ids.fork) & (n <= slots.budget - slots.num_out)
  view = slots.replace(length=slots.length + n - 1, num_out=slots.num_out + n - 1)
  granted = fork.grant(state.pool, view, requests, want, caps)
  refused = want & ~granted
  node_logits = _at(logits, _at(acc.nodes, n - 1))  # [S, V] after the last committed node
  tok = refine_if(jnp.any(refused),
                  lambda: jnp.where(refused, choose(ban_column(node_logits, ids.fork, refused),
                                                    view, requests, hints), acc.next_token),
                  lambda: acc.next_token, hints)
  rows = jnp.arange(n.shape[0])
  acc = acc.replace(next_token=tok, tokens=acc.tokens.at[rows, n - 1].set(tok))
  claimed, requests = fork.claim(view, requests, granted, caps, ids)
  new_child = claimed.status != slots.status
  slots = claimed.replace(length=jnp.where(new_child, claimed.length, slots.length),
                          num_out=jnp.where(new_child, claimed.num_out, slots.num_out))
  n_refused = jax.ops.segment_sum(refused.astype(jnp.int32), slots.request,
                                  num_segments=caps.max_requests)
  requests = requests.replace(refused_forks=requests.refused_forks + n_refused)
  return state.replace(slots=slots, requests=requests), acc, new_child


def emit_tokens(state: EngineState, acc: Acceptance, live: jax.Array,
                cfg: StepConfig) -> tuple[EngineState, jax.Array]:
  """Appends each live slot's accepted tokens (cut at its budget), advances it, finishes it at a
  stop token or its budget (pages released). Returns (state, n_emit [S])."""
  caps, slots = cfg.caps, state.slots
  s, w = acc.tokens.shape
  n_emit = jnp.where(live, jnp.minimum(acc.num_nodes, slots.budget - slots.num_out), 0)
  slots = stamp_steps(slots, state.requests, n_emit > 0)
  j = jnp.arange(w)[None]
  emitted = j < n_emit[:, None]  # [S, W]
  col = jnp.where(emitted, slots.num_out[:, None] + j, caps.max_new_tokens)  # dropped if not
  tokens = slots.tokens.at[jnp.arange(s)[:, None], col].set(acc.tokens, mode='drop')
  last = _at(acc.tokens, n_emit - 1)
  num_out = slots.num_out + n_emit
  slots = slots.replace(tokens=tokens, num_out=num_out, length=slots.length + n_emit,
                        last_token=jnp.where(live, last, slots.last_token))
  stop = jnp.any(emitted & jnp.isin(acc.tokens, jnp.asarray(cfg.ids.stop, jnp.int32)), axis=1)
  finishing = live & (stop | (num_out >= slots.budget))
  pool, slots = page_allocator.release_slots(state.pool, slots, finishing, caps.sink)
  slots = slots.replace(status=jnp.where(finishing, DONE, slots.status))
  ended = jax.ops.segment_sum(finishing.astype(jnp.int32), slots.request,
                              num_segments=caps.max_requests)
  requests = state.requests.replace(live_branches=state.requests.live_branches - ended)
  return state.replace(pool=pool, slots=slots, requests=requests), n_emit


def next_draft(params: Any, dparams: Any, ss: spec_state.SpecSlots, acc: Acceptance,
               hidden: Any, pseudo: Any, live: jax.Array, cfg: SpecStepConfig,
               rows: int) -> jax.Array:
  """[S, K, topk]: from the last committed node's final hidden state (Medusa) or its pseudo states
  (Hidden Transfer), computed on the `rows` live rows for the heads and ranks the tree reads (-1
  elsewhere); prompt lookup drafts at the start of each step instead."""
  spec = cfg.spec
  d, tree = spec.drafter, spec.tree
  if d.kind not in ('medusa', 'hidden_transfer'):
    return ss.draft
  last_node = _at(acc.nodes, acc.num_nodes - 1)
  lm_head = lm_head_fn(params, cfg.base.model.cfg)
  k = tree.topk_needed()
  if d.kind == 'medusa':
    heads = drafting_params(dparams, spec)
    propose = lambda h: medusa.propose(heads, h, lm_head, k)  # noqa: E731  [rows, h, k]
    states = _at(hidden, last_node)  # [S, d]
  else:
    propose = lambda h: top_tokens(lm_head(h), k)  # noqa: E731  [rows, h, k]
    states = _at(pseudo, last_node)  # [S, h, d]
  draft = row_buckets.map_live_rows(propose, live, rows, states)  # [S, h, k]
  s, h = draft.shape[:2]
  draft = jnp.pad(draft, ((0, 0), (0, d.num_heads - h), (0, d.topk - k)), constant_values=-1)
  return jnp.where(live[:, None, None], draft, ss.draft)


def undrafted_step(params: Any, state: EngineState, cfg: SpecStepConfig,
                   hints: Optional[StepHints] = None, rows: Optional[int] = None) -> EngineState:
  """The root-only tree's step: AR's / APAR's own `decode_step`, with prompt lookup's history kept
  current (the emitted token; a new child's copy of its parent's). Drafts are left as they are
  (a later drafting step may find them stale: verified, so never wrong)."""
  new = decode_step(params, state, cfg.base, hints, rows)
  if not spec_state.uses_history(cfg.spec):
    return new
  old_slots, slots = state.slots, new.slots
  n_emit = slots.num_out - old_slots.num_out  # [S] 0 or 1 (a COPYING child goes LIVE and emits)
  history = spec_state.history_emit(new.spec.history, old_slots.length, slots.last_token[:, None],
                                    n_emit)
  if cfg.base.apar:
    new_child = (slots.status == PENDING) & (old_slots.status != PENDING)
    history = spec_state.history_fork(history, new_child, slots.parent_slot, slots.length,
                                      cfg.base.ids.child)
  return new.replace(spec=new.spec.replace(history=history))


def spec_step(params: Any, dparams: Any, state: EngineState, cfg: SpecStepConfig,
              hints: Optional[StepHints] = None, rows: Optional[int] = None) -> EngineState:
  """One verification step of every LIVE slot (`hints`: shared by all data shards); the
  verification forward runs on a bucket of `rows` rows holding the LIVE slots (None = all S)."""
  base, spec = cfg.base, cfg.spec
  caps = base.caps
  if not drafts(spec):
    return undrafted_step(params, state, cfg, hints, rows)
  if base.apar:
    state = fork.copy_on_write(state, caps, hints)
  live = state.slots.status == LIVE
  pool, slots = grow_window(state.pool, state.slots, live, spec.query_tokens, caps.page_size,
                            caps.sink)
  state = state.replace(pool=pool, slots=slots)
  rows = caps.max_slots if rows is None else rows
  recycling = spec.drafter.kind == 'token_recycling'
  if recycling:
    cand, source = spec_state.recycled_candidates(state.spec, slots, spec)  # [S, T] each
  else:
    cand = spec.tree.candidates(slots.last_token,
                                spec_state.current_draft(state.spec, slots, spec))  # [S, T]
  logits, hidden, pseudo, caches = row_buckets.on_live_rows(
      lambda st, lv, c: verify_forward(params, dparams, st, c, lv, cfg), state, live, rows, cand)
  state = state.replace(caches=caches)
  if recycling:  # every node's successors, before the mode's bans: what the model itself ranks
    state = state.replace(spec=spec_state.recycle(state.spec, cand, logits, live))
  if base.apar:
    state = fork.spawn(state, caps)
  logits = ban_nodes(logits, cand, state, cfg)
  acc = accept(cand, logits, state, live, cfg, hints)
  new_child = jnp.zeros_like(live)
  if base.apar:
    state, acc, new_child = fork_phase(state, acc, logits, live, cfg, hints)
  slots = state.slots
  state = state.replace(caches=tuple(compact_paged(c, slots.page_table, slots.length, acc.nodes,
                                                   acc.num_nodes, live) for c in state.caches))
  state = record_stats(state, live, base)
  length_before = state.slots.length
  state, n_emit = emit_tokens(state, acc, live, base)
  if recycling:  # the drafted tokens emitted (within the budget), by where they came from
    state = state.replace(spec=state.spec.replace(by_source=state.spec.by_source + (
        token_recycling.accepted_by_source(source, acc.nodes, n_emit))))
  ss = state.spec
  history = ss.history
  if spec_state.uses_history(spec):
    history = spec_state.history_emit(history, length_before, acc.tokens, n_emit)
    if base.apar:
      history = spec_state.history_fork(history, new_child, state.slots.parent_slot,
                                        state.slots.length, base.ids.child)
  draft = next_draft(params, dparams, ss, acc, hidden, pseudo, live, cfg, rows)
  drafted = ss.drafted + jnp.stack([jnp.sum(live), jnp.sum(n_emit)]).astype(jnp.int32)
  return state.replace(spec=ss.replace(draft=draft, history=history, drafted=drafted))

