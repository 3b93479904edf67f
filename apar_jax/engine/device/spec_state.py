"""Per-slot state of the speculative modes: the next step's draft and (prompt lookup) token history.

`draft [S, K, topk]`: the guesses for tree depths 1..K of the slot's next step (-1 = no guess, never
accepted). A slot at its first step (`num_out == 0`: a just-admitted root, a new APAR child) has no
draft from a model drafter: its row is ignored, so a request's tokens never depend on what an earlier
occupant of the slot left behind.
`history [S, H]`: prompt lookup and token recycling (H = page-table positions, else 1):
history[s, p] = the token at position p of the slot's view, valid for p <= length (the fed
`last_token` sits at `length`). Written by admit/prefill (the prompt), by every step (emitted tokens)
and copied from the parent on a fork (then `[Child]` at the child's length).
`table [V, k]`: token recycling only (else [1, 1]): every token's k most recent candidate successors
(`speculative.token_recycling`), refreshed by every verification forward and kept across requests
(an engine's reset keeps it).
"""

import flax.struct
import jax
import jax.numpy as jnp

from apar_jax.engine.device.spec_config import SpecConfig
from apar_jax.engine.device.state import Capacities, Slots
from apar_jax.speculative import acceptance_tally, prompt_lookup, token_recycling


@flax.struct.dataclass
class SpecSlots:
  draft: jax.Array  # [S, K, topk] int32
  history: jax.Array  # [S, H] int32 (H = slot capacity for prompt lookup, else 1)
  # [2] int32, since init: (live row-steps of drafting steps, tokens those row-steps emitted); the
  # host turns them into the acceptance the running requests reach (`draft_control`)
  drafted: jax.Array
  table: jax.Array  # [V, k] int32 (token recycling), else [1, 1]
  # [2] int32, since init: drafted tokens accepted from the context match and from the table
  # (token recycling; zeros otherwise)
  by_source: jax.Array
  # [2, K, topk] int32, since init: drafted nodes tried and kept per tree (level, rank): the
  # acceptance table the running requests reach (`speculative.acceptance_tally`)
  tally: jax.Array


def init_spec_slots(caps: Capacities, spec: SpecConfig, vocab: int) -> SpecSlots:
  d = spec.drafter
  width = caps.table_width * caps.page_size if uses_history(spec) else 1
  table = (token_recycling.empty_table(vocab, d.topk) if d.kind == 'token_recycling'
           else jnp.full((1, 1), -1, jnp.int32))
  return SpecSlots(jnp.full((caps.max_slots, d.num_heads, d.topk), -1, jnp.int32),
                   jnp.zeros((caps.max_slots, width), jnp.int32), jnp.zeros((2,), jnp.int32),
                   table, jnp.zeros((2,), jnp.int32), acceptance_tally.empty(d.num_heads, d.topk))


def uses_history(spec: SpecConfig) -> bool:
  return spec.drafter.kind in ('lookup', 'token_recycling')


def recycled_candidates(ss: SpecSlots, slots: Slots,
                        spec: SpecConfig) -> tuple[jax.Array, jax.Array]:
  """(cand [S, T], source [S, T]): token recycling's tree, the spine from the latest context match,
  the rest walked from the table (`token_recycling.fill`)."""
  d, tree = spec.drafter, spec.tree
  context = prompt_lookup.lookup(ss.history, slots.length + 1, tree.max_depth, d.max_ngram,
                                 d.min_ngram)[..., 0]  # [S, depth]
  return token_recycling.fill(ss.table, slots.last_token, tree, context)


def recycle(ss: SpecSlots, cand: jax.Array, logits: jax.Array, live: jax.Array) -> SpecSlots:
  """The table refreshed from a verification forward: every live slot's node tokens cand [S, T]
  with their logits [S, T, V]."""
  s, t, v = logits.shape
  valid = jnp.broadcast_to(live[:, None], (s, t)).reshape(-1)
  return ss.replace(table=token_recycling.refresh(ss.table, cand.reshape(-1),
                                                  logits.reshape(s * t, v), valid))


def recycle_prompt(ss: SpecSlots, tokens: jax.Array, logits: jax.Array,
                   valid: jax.Array) -> SpecSlots:
  """The table refreshed from a prefill chunk: prompt tokens [C] with their logits [C, V] (`valid`
  [C]: a real prompt position of an active shard)."""
  return ss.replace(table=token_recycling.refresh(ss.table, tokens, logits, valid))


def history_admit(ss: SpecSlots, slot: jax.Array, prompt_len: jax.Array,
                  last_token: jax.Array) -> SpecSlots:
  """The prompt's last token (fed by the first step) at position prompt_len - 1."""
  return ss.replace(history=ss.history.at[slot, prompt_len - 1].set(last_token, mode='drop'))


def history_prefill(ss: SpecSlots, slot: jax.Array, tokens: jax.Array, start: jax.Array,
                    length: jax.Array) -> SpecSlots:
  """Prompt tokens [C] at start.. (positions >= `length`, the padding of a last chunk, skipped)."""
  pos = start + jnp.arange(tokens.shape[0], dtype=jnp.int32)
  pos = jnp.where(pos < length, pos, ss.history.shape[1])  # out of bounds: dropped
  return ss.replace(history=ss.history.at[slot, pos].set(tokens, mode='drop'))


def history_emit(history: jax.Array, length: jax.Array, tokens: jax.Array,
                 n_emit: jax.Array) -> jax.Array:
  """Emitted tokens [S, W] (n_emit [S] of them) at positions length + 1 .. length + n_emit."""
  s, w = tokens.shape
  j = jnp.arange(w)[None]
  pos = jnp.where(j < n_emit[:, None], length[:, None] + 1 + j, history.shape[1])
  return history.at[jnp.arange(s)[:, None], pos].set(tokens, mode='drop')


def history_fork(history: jax.Array, new_child: jax.Array, parent_slot: jax.Array,
                 child_length: jax.Array, child_id: int) -> jax.Array:
  """New children [S] take their parent's history (the `[Fork]` included), then `[Child]`."""
  s = history.shape[0]
  inherited = history[jnp.clip(parent_slot, 0, s - 1)]
  history = jnp.where(new_child[:, None], inherited, history)
  pos = jnp.where(new_child, child_length, history.shape[1])
  return history.at[jnp.arange(s), pos].set(child_id, mode='drop')


def current_draft(ss: SpecSlots, slots: Slots, spec: SpecConfig) -> jax.Array:
  """[S, K, topk] guesses for this step's tree."""
  d = spec.drafter
  if d.kind == 'lookup':
    return prompt_lookup.lookup(ss.history, slots.length + 1, d.num_heads, d.max_ngram, d.min_ngram)
  return jnp.where((slots.num_out == 0)[:, None, None], -1, ss.draft)
