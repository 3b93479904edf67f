"""A small speculative decoder over a paged cache: the blueprint (and test bed) for the engine step.

Not the engine: one row per prompt, each row owning a fixed run of pages, one jitted step per host
call. It runs the pieces the engine will run inside its `while_loop`, in the same order:
  1. candidates = tree.candidates(last_token, draft)               [S, T]
  2. one forward over the tree (PagedSpec with the tree mask, positions length + depth)
  3. acceptance (greedy / rejection / typical)                     -> Acceptance
  4. KV compaction of the committed nodes                          (compact_paged per layer)
  5. emit tokens, advance length by num_nodes, last_token = next_token
  6. draft for the next step from the same forward (or the HT extra pass)
"""

import dataclasses
import functools
from typing import Any, Optional, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import PagedCache, PagedSpec, Transformer
from apar_jax.sampling import sample_logits
from apar_jax.speculative import hidden_transfer, medusa, prompt_lookup
from apar_jax.speculative.acceptance import Acceptance, greedy_accept, is_stop, typical_accept
from apar_jax.speculative.compaction import compact_paged, gather_nodes
from apar_jax.speculative.drafter import Drafter
from apar_jax.speculative.layer_runner import forward_with_layer_hidden, lm_head_fn
from apar_jax.speculative.rejection import rejection_accept
from apar_jax.speculative.tree import TokenTree

ACCEPTANCE = ('greedy', 'rejection', 'typical')


@flax.struct.dataclass
class SpecState:
  caches: tuple  # n_layers x PagedCache([S * pages_per_row, page_size, Hkv, D])
  page_tables: jax.Array  # [S, pages_per_row]
  lengths: jax.Array  # [S] committed tokens (position of last_token)
  last_token: jax.Array  # [S] chosen, not yet fed
  draft: jax.Array  # [S, K, topk]
  history: jax.Array  # [S, N] prompt + outputs (lookup), N = capacity
  out: jax.Array  # [S, max_new]
  num_out: jax.Array  # [S]
  done: jax.Array  # [S] bool
  keys: jax.Array  # [S] PRNG keys
  steps: jax.Array  # [] verification steps run
  row_steps: jax.Array  # [S] steps each row was live in


@dataclasses.dataclass(frozen=True)
class Settings:
  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0
  seed: int = 0


class SpeculativeReferenceDecoder:
  """Speculative decoding of a batch of prompts (see the module docstring)."""

  def __init__(self, model: Transformer, params: Any, drafter: Drafter, drafter_params: Any,
               tree: TokenTree, *, stop_ids: Sequence[int], acceptance: str = 'greedy',
               page_size: int = 16, attention_impl: str = 'reference'):
    if acceptance not in ACCEPTANCE:
      raise ValueError(f'unknown acceptance {acceptance!r}; choose one of {ACCEPTANCE}')
    drafter.check(tree, model.cfg, drafter_params)
    self.model, self.params = model, params
    self.drafter, self.drafter_params, self.tree = drafter, drafter_params, tree
    self.stop_ids = tuple(int(i) for i in stop_ids)
    self.acceptance, self.page_size, self.impl = acceptance, page_size, attention_impl
    self._prefill = jax.jit(self._prefill_impl, static_argnames=('capacity', 'max_new'))
    self._step = jax.jit(self._step_impl, donate_argnums=(2,))

  # ---- drafts -----------------------------------------------------------------------------------
  def _ht_extra_pass(self, params, dparams, h_last, lengths, page_tables, caches):
    d = self.drafter
    spec = PagedSpec(page_tables, lengths, None, impl=self.impl)
    return hidden_transfer.propose_extra_pass(params, self.model.cfg, dparams, h_last,
                                              lengths, spec, caches, d.transfer_layer, d.topk)

  def _oracle_draft(self, oracle, num_out):
    """Guess i = oracle[num_out + i] (the true continuation); rank r > 0 guesses are shifted ids."""
    d = self.drafter
    idx = num_out[:, None] + jnp.arange(d.num_heads)[None]  # [S, K]
    true = jnp.take_along_axis(oracle, jnp.minimum(idx, oracle.shape[1] - 1), axis=1)
    ranks = jnp.arange(d.topk)[None, None]
    return jnp.where(ranks == 0, true[..., None], (true[..., None] + ranks) %
                     self.model.cfg.vocab_size).astype(jnp.int32)

  # ---- prefill ----------------------------------------------------------------------------------
  def _prefill_impl(self, params, dparams, tokens, prompt_lens, keys, temp, top_k, top_p, oracle, *,
                    capacity: int, max_new: int) -> SpecState:
    cfg, d = self.model.cfg, self.drafter
    s, tp = tokens.shape
    rows = jnp.arange(s)
    pages = -(-capacity // self.page_size)
    page_tables = (rows[:, None] * pages + jnp.arange(pages)[None]).astype(jnp.int32)
    caches = tuple(PagedCache.zeros(s * pages, self.page_size, cfg.n_kv_heads, cfg.head_dim,
                                    jnp.dtype(cfg.dtype)) for _ in range(cfg.n_layers))
    positions = jnp.broadcast_to(jnp.arange(tp, dtype=jnp.int32), (s, tp))
    spec = PagedSpec(page_tables, jnp.zeros((s,), jnp.int32), None, impl=self.impl)
    layer = d.transfer_layer if d.kind == 'hidden_transfer' else cfg.n_layers
    out, h_l = forward_with_layer_hidden(self.model, params, tokens, positions, spec, caches, layer)
    last = (prompt_lens - 1)[:, None]
    first = sample_logits(jnp.take_along_axis(out.logits, last[..., None], axis=1)[:, 0],
                          jax.vmap(lambda k: jax.random.fold_in(k, 1 << 20))(keys), temp, top_k,
                          top_p)
    history = jnp.zeros((s, capacity), jnp.int32).at[:, :tp].set(tokens)
    history = history.at[rows, prompt_lens].set(first)
    lengths = prompt_lens.astype(jnp.int32)
    caches = out.caches
    if d.kind == 'medusa':
      hidden = jnp.take_along_axis(out.hidden, last[..., None], axis=1)[:, 0]
      draft = medusa.propose(dparams, hidden, lm_head_fn(params, cfg), d.topk)
    elif d.kind == 'hidden_transfer':
      h_last = jnp.take_along_axis(h_l, last[..., None], axis=1)[:, 0]
      draft, caches = self._ht_extra_pass(params, dparams, h_last, lengths, page_tables, caches)
    elif d.kind == 'lookup':
      draft = prompt_lookup.lookup(history, lengths + 1, d.num_heads, d.max_ngram, d.min_ngram)
    else:
      draft = self._oracle_draft(oracle, jnp.ones((s,), jnp.int32))
    done = is_stop(first, self.stop_ids) | (max_new <= 1)
    out_buf = jnp.zeros((s, max_new), jnp.int32).at[:, 0].set(first)
    return SpecState(caches, page_tables, lengths, first, draft, history, out_buf,
                     jnp.ones((s,), jnp.int32), done, keys, jnp.zeros((), jnp.int32),
                     jnp.zeros((s,), jnp.int32))

  # ---- one verification step ------------------------------------------------------------------
  def _accept(self, cand, logits, keys, temp, top_k, top_p) -> Acceptance:
    if self.acceptance == 'greedy':
      return greedy_accept(cand, logits, self.tree, self.stop_ids)
    if self.acceptance == 'typical':
      return typical_accept(cand, logits, self.tree, keys, temp, self.stop_ids)
    return rejection_accept(cand, logits, self.tree, keys, temp, top_k, top_p, self.stop_ids)

  def _step_impl(self, params, dparams, st: SpecState, temp, top_k, top_p, oracle) -> SpecState:
    cfg, d, tree = self.model.cfg, self.drafter, self.tree
    s = st.lengths.shape[0]
    rows = jnp.arange(s)
    live = ~st.done
    cand = tree.candidates(st.last_token, st.draft)  # [S, T]
    make_spec = lambda m: PagedSpec(st.page_tables, st.lengths, m, write=live,  # noqa: E731
                                    impl=self.impl)
    pseudo_draft = h_l = None
    if d.kind == 'hidden_transfer' and d.ht_variant == 'verify':
      logits, hidden, pseudo_draft, caches = hidden_transfer.verify_with_transfer(
          self.model, params, dparams, cand, st.lengths, tree, make_spec, st.caches,
          d.transfer_layer, d.topk)
    else:
      layer = d.transfer_layer if d.kind == 'hidden_transfer' else cfg.n_layers
      out, h_l = forward_with_layer_hidden(self.model, params, cand, tree.positions(st.lengths),
                                           make_spec(tree.block_mask(s)), st.caches, layer)
      logits, hidden, caches = out.logits, out.hidden, out.caches
    step_keys = jax.vmap(lambda k: jax.random.fold_in(k, st.steps))(st.keys)
    acc = self._accept(cand, logits, step_keys, temp, top_k, top_p)
    caches = tuple(compact_paged(c, st.page_tables, st.lengths, acc.nodes, acc.num_nodes, live)
                   for c in caches)
    # Emit (truncated at the budget, as AR would stop there).
    max_new = st.out.shape[1]
    width = acc.tokens.shape[1]
    col = st.num_out[:, None] + jnp.arange(width)[None]  # [S, D + 1]
    emit = live[:, None] & (jnp.arange(width)[None] < acc.num_nodes[:, None]) & (col < max_new)
    out = st.out.at[rows[:, None], jnp.where(emit, col, max_new)].set(acc.tokens, mode='drop')
    hist_col = jnp.where(emit, st.lengths[:, None] + 1 + jnp.arange(width)[None],
                         st.history.shape[1])
    history = st.history.at[rows[:, None], hist_col].set(acc.tokens, mode='drop')
    n_emit = jnp.sum(emit, axis=1).astype(jnp.int32)
    num_out = st.num_out + n_emit
    stopped = jnp.any(emit & is_stop(acc.tokens, self.stop_ids), axis=1)
    done = st.done | (live & (stopped | (num_out >= max_new)))
    lengths = jnp.where(live, st.lengths + acc.num_nodes, st.lengths)
    last_token = jnp.where(live, acc.next_token, st.last_token)
    # Draft for the next step.
    last_node = gather_nodes(acc.nodes, (acc.num_nodes - 1)[:, None])[:, 0]  # [S]
    if d.kind == 'medusa':
      h = gather_nodes(hidden, last_node[:, None])[:, 0]
      draft = medusa.propose(dparams, h, lm_head_fn(params, cfg), d.topk)
    elif d.kind == 'hidden_transfer' and d.ht_variant == 'verify':
      draft = gather_nodes(pseudo_draft, last_node[:, None])[:, 0]
    elif d.kind == 'hidden_transfer':
      h = gather_nodes(h_l, last_node[:, None])[:, 0]
      draft, caches = self._ht_extra_pass(params, dparams, h, lengths, st.page_tables, caches)
    elif d.kind == 'lookup':
      draft = prompt_lookup.lookup(history, lengths + 1, d.num_heads, d.max_ngram, d.min_ngram)
    else:
      draft = self._oracle_draft(oracle, num_out)
    return SpecState(caches, st.page_tables, lengths, last_token, draft, history, out, num_out, done,
                     st.keys, st.steps + 1, st.row_steps + live)

  # ---- host API -------------------------------------------------------------------------------
  def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
               settings: Settings = Settings(), oracle: Optional[np.ndarray] = None,
               keys: Optional[jax.Array] = None) -> dict[str, Any]:
    """{'tokens': [[...]], 'steps': [...] per row, 'mean_accepted_tokens': float}."""
    s = len(prompts)
    tp = max(len(p) for p in prompts)
    extra = self.tree.num_nodes * (1 + (self.drafter.num_heads if self.drafter.kind ==
                                        'hidden_transfer' else 0))
    capacity = -(-(tp + max_new_tokens + extra + 1) // self.page_size) * self.page_size
    if capacity > self.model.cfg.max_position:
      raise ValueError(f'prompt + max_new_tokens + tree need {capacity} positions, more than the '
                       f"model's max_position {self.model.cfg.max_position}")
    tokens = np.zeros((s, tp), np.int32)
    for i, p in enumerate(prompts):
      tokens[i, :len(p)] = p
    rows = lambda v, dt: jnp.full((s,), v, dt)  # noqa: E731
    temp, top_k, top_p = (rows(settings.temperature, jnp.float32), rows(settings.top_k, jnp.int32),
                          rows(settings.top_p, jnp.float32))
    if keys is None:
      keys = jax.random.split(jax.random.key(settings.seed), s)
    oracle = jnp.zeros((s, 1), jnp.int32) if oracle is None else jnp.asarray(oracle, jnp.int32)
    st = self._prefill(self.params, self.drafter_params, jnp.asarray(tokens),
                       jnp.asarray([len(p) for p in prompts], jnp.int32), keys, temp, top_k, top_p,
                       oracle, capacity=capacity, max_new=max_new_tokens)
    while not bool(jnp.all(st.done)):
      st = self._step(self.params, self.drafter_params, st, temp, top_k, top_p, oracle)
    out, num, steps = np.asarray(st.out), np.asarray(st.num_out), np.asarray(st.row_steps)
    emitted = int(np.sum(num - 1))
    return {'tokens': [[int(t) for t in out[i, :num[i]]] for i in range(s)],
            'steps': [int(x) for x in steps],
            'mean_accepted_tokens': emitted / max(int(np.sum(steps)), 1)}
