"""The drafting tree's step (`tree_step`, called by `step.decode_step`) over all S slots: draft
tree -> one verifying forward -> accept -> compact -> (APAR) fork -> emit 1..D+1 tokens -> next
draft. Shapes never change; per-slot accepted counts do.

Each LIVE slot feeds its tree's T candidate tokens (node 0 = `last_token`) at positions `length +
depth`, their K/V written at `length .. length + Q - 1` (Q = T, or T(1 + h) with Hidden Transfer's
pseudo rows, h = the tree's depth) under the tree mask. The mode's bans are applied per node exactly
as AR/APAR apply them to a single token (`[Child]` always; `[Fork]` always in non-APAR modes, by
`fork.rule_ban` evaluated at the node's depth in APAR modes), so greedy acceptance reproduces
AR/APAR token for token and rejection sampling draws from the same distributions. Acceptance halts
at `[Fork]`/EOS, which is then the step's last token: the fork is granted (or refused and re-chosen)
and the branch ends exactly as in APAR/AR mode, the fork point being the parent's output index of
that `[Fork]`. Pages for the whole window are allocated before the forward and reserved in advance
(`caps.slack`). The tree is the row bucket's (`SpecConfig.for_rows`); the root-only tree runs AR's /
APAR's own step (`step.root_step`). Forks, statistics and emission are every step's (`step_commit`).
"""

from typing import Any, Optional

import jax
import jax.numpy as jnp

from apar_jax.engine.device import fork, page_allocator, row_buckets, spec_state
from apar_jax.engine.device.spec_config import SpecConfig
from apar_jax.engine.device.state import LIVE, EngineState
from apar_jax.engine.device.step_commit import emit, record_stats, settle_forks
from apar_jax.engine.device.step_config import StepConfig
from apar_jax.engine.device.step_hints import StepHints
from apar_jax.engine.device.token_choice import choose, step_keys
from apar_jax.model import PagedSpec
from apar_jax.speculative import acceptance_tally, hidden_transfer, medusa, token_recycling
from apar_jax.speculative.acceptance import Acceptance, greedy_accept, typical_accept
from apar_jax.speculative.compaction import compact_paged
from apar_jax.speculative.layer_runner import lm_head_fn
from apar_jax.speculative.rejection import rejection_accept
from apar_jax.speculative.top_tokens import top_tokens


def drafting_params(dparams: Any, spec: SpecConfig) -> Any:
  """The drafter params the step's tree reads: its first `max_depth` Medusa heads / Hidden Transfer
  maps (a shallower tree pays for fewer LM-head rows and pseudo tokens)."""
  d, h = spec.drafter, spec.tree.max_depth
  if d.kind == 'medusa':
    return {f'head_{i}': dparams[f'head_{i}'] for i in range(h)}
  if d.kind == 'hidden_transfer':
    return {'kernel': dparams['kernel'][:h], 'bias': dparams['bias'][:h]}
  return dparams


def verify_forward(params: Any, dparams: Any, state: EngineState, cand: jax.Array, live: jax.Array,
                   cfg: StepConfig):
  """(logits [S, T, V], hidden [S, T, d] or None, pseudo states [S, T, h, d] or None, caches)."""
  spec = cfg.spec
  slots, tree, d = state.slots, spec.tree, spec.drafter
  make_spec = lambda m: PagedSpec(slots.page_table, slots.length, m, write=live,  # noqa: E731
                                  impl=cfg.attention_impl)
  if d.kind == 'hidden_transfer':
    return hidden_transfer.verify_with_transfer_states(
        cfg.model, params, drafting_params(dparams, spec), cand, slots.length, tree, make_spec,
        state.caches, d.transfer_layer)
  out = cfg.model.apply({'params': params}, cand, tree.positions(slots.length),
                         make_spec(tree.block_mask(cand.shape[0])), state.caches,
                         return_hidden=d.kind == 'medusa')
  return out.logits, out.hidden, None, out.caches


def ban_nodes(logits: jax.Array, cand: jax.Array, state: EngineState,
              cfg: StepConfig) -> jax.Array:
  """logits [S, T, V] with the mode's bans at every node (node i decides output num_out + depth)."""
  ids, slots = cfg.ids, state.slots
  logits = logits.at[..., ids.child].set(-jnp.inf)
  if not cfg.apar:
    return logits.at[..., ids.fork].set(-jnp.inf)
  depth = jnp.asarray(cfg.spec.tree.depth)[None]  # [1, T]
  wide = lambda x: jnp.broadcast_to(x[:, None], cand.shape)  # noqa: E731
  view = slots.replace(length=slots.length[:, None] + depth, num_out=slots.num_out[:, None] + depth,
                       last_token=cand, depth=wide(slots.depth), budget=wide(slots.budget),
                       request=wide(slots.request))
  ban = fork.rule_ban(view, state.requests, cfg.caps, ids)  # [S, T]
  return logits.at[..., ids.fork].set(jnp.where(ban, -jnp.inf, logits[..., ids.fork]))


def accept(cand: jax.Array, logits: jax.Array, state: EngineState, live: jax.Array,
           cfg: StepConfig, hints: Optional[StepHints] = None) -> Acceptance:
  """Greedy when every live row is greedy (of every shard, with `hints`), else rejection sampling
  (typical if configured), which gives greedy rows the greedy result."""
  tree = cfg.spec.tree
  stops = tuple(cfg.ids.stop) + ((cfg.ids.fork,) if cfg.apar else ())
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


def next_draft(params: Any, dparams: Any, ss: spec_state.SpecSlots, acc: Acceptance,
               hidden: Any, pseudo: Any, live: jax.Array, cfg: StepConfig,
               rows: int) -> jax.Array:
  """[S, K, topk]: from the last committed node's final hidden state (Medusa) or its pseudo states
  (Hidden Transfer), computed on the `rows` live rows for the heads and ranks the tree reads (-1
  elsewhere); prompt lookup drafts at the start of each step instead."""
  spec = cfg.spec
  d, tree = spec.drafter, spec.tree
  if d.kind not in ('medusa', 'hidden_transfer'):
    return ss.draft
  last_node = _at(acc.nodes, acc.num_nodes - 1)
  lm_head = lm_head_fn(params, cfg.model.cfg)
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


def tree_step(params: Any, dparams: Any, state: EngineState, cfg: StepConfig,
              hints: Optional[StepHints] = None, rows: Optional[int] = None) -> EngineState:
  """One verification step of every LIVE slot (`hints`: shared by all data shards); the
  verification forward runs on a bucket of `rows` rows holding the LIVE slots (None = all S)."""
  spec, caps, ids = cfg.spec, cfg.caps, cfg.ids
  if cfg.apar:
    state = fork.copy_on_write(state, caps, hints)
  live = state.slots.status == LIVE
  pool, slots = page_allocator.grow(state.pool, state.slots, live, spec.query_tokens,
                                    caps.page_size, caps.sink)
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
  if cfg.apar:
    state = fork.spawn(state, caps)
  logits = ban_nodes(logits, cand, state, cfg)
  acc = accept(cand, logits, state, live, cfg, hints)
  tokens, new_child = acc.tokens, jnp.zeros_like(live)
  if cfg.apar:
    node_logits = _at(logits, _at(acc.nodes, acc.num_nodes - 1))  # [S, V] after the last node
    pick = lambda lg, view: choose(lg, view, state.requests, hints)  # noqa: E731
    state, tokens, new_child = settle_forks(state, tokens, acc.num_nodes, node_logits, live, caps,
                                            ids, pick, hints)
    acc = acc.replace(tokens=tokens, next_token=tokens[jnp.arange(tokens.shape[0]),
                                                      acc.num_nodes - 1])
  slots = state.slots
  state = state.replace(caches=tuple(compact_paged(c, slots.page_table, slots.length, acc.nodes,
                                                   acc.num_nodes, live) for c in state.caches))
  state = record_stats(state, live, caps)
  length_before = state.slots.length
  state, n_emit = emit(state, tokens, acc.num_nodes, live, caps, ids)
  if recycling:  # the drafted tokens emitted (within the budget), by where they came from
    state = state.replace(spec=state.spec.replace(by_source=state.spec.by_source + (
        token_recycling.accepted_by_source(source, acc.nodes, n_emit))))
  ss = state.spec
  history = ss.history
  if spec_state.uses_history(spec):
    history = spec_state.history_emit(history, length_before, tokens, n_emit)
    if cfg.apar:
      history = spec_state.history_fork(history, new_child, state.slots.parent_slot,
                                        state.slots.length, ids.child)
  draft = next_draft(params, dparams, ss, acc, hidden, pseudo, live, cfg, rows)
  drafted = ss.drafted + jnp.stack([jnp.sum(live), jnp.sum(n_emit)]).astype(jnp.int32)
  tally = acceptance_tally.count(ss.tally, spec.tree, cand, acc.nodes, n_emit, live)
  return state.replace(spec=ss.replace(draft=draft, history=history, drafted=drafted, tally=tally))
