"""Per-slot token choice: control-token bans, per-branch PRNG keys, and the shared sampler.

Keys depend only on the request's seed, the branch's place in the tree and the output index, never
on the slot or on other requests, so a request gives the same tokens alone or in a batch:
root key = key(seed); child key = fold_in(parent key, fork_point); the key of output t is
fold_in(branch key, t).
"""

import dataclasses
from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from apar_jax.engine.device.state import Requests, Slots
from apar_jax.engine.device.step_hints import StepHints
from apar_jax.repeat_penalty import penalize_repeats
from apar_jax.sampling import sample_logits

NEG_INF = -jnp.inf


@dataclasses.dataclass(frozen=True)
class ControlIds:
  """Token ids the engine reacts to (from the tokenizer; static)."""
  fork: int
  child: int
  stop: tuple[int, ...]
  # tokens without a letter (`repeat_penalty.letterless_ids`): spared by the repetition penalty of a
  # request with `penalize_symbols=False`; () = that option has no effect
  symbols: tuple[int, ...] = dataclasses.field(default=(), repr=False)

  def __post_init__(self):
    if not self.stop:
      raise ValueError('the engine needs at least one stop id (EOS)')


def root_key_data(seed: int) -> jax.Array:
  """[2] uint32: raw key of a request's root branch."""
  return jax.random.key_data(jax.random.key(seed))


def child_key_data(parent_key: jax.Array, fork_point: jax.Array) -> jax.Array:
  """[S, 2] uint32: raw keys of children spawned at `fork_point [S]` of parents `parent_key`."""
  def fold(k, i):
    return jax.random.key_data(jax.random.fold_in(jax.random.wrap_key_data(k), i))
  return jax.vmap(fold)(parent_key, fork_point)


def step_keys(slots: Slots) -> jax.Array:
  """[S] typed keys for the token each slot emits now (output index `num_out`)."""
  return jax.vmap(lambda k, i: jax.random.fold_in(jax.random.wrap_key_data(k), i))(
      slots.key, slots.num_out)


def ban_column(logits: jax.Array, token: int, ban: jax.Array) -> jax.Array:
  """Sets logits[:, token] to -inf on rows where `ban [S]`. logits [S, V]."""
  return logits.at[:, token].set(jnp.where(ban, NEG_INF, logits[:, token]))


def apply_repeat_penalties(logits: jax.Array, slots: Slots, requests: Requests,
                           exempt: Sequence[int] = (),
                           any_penalized: Optional[jax.Array] = None,
                           symbols: Sequence[int] = ()) -> jax.Array:
  """logits [S, V] with each slot's request penalties against its own outputs (`repeat_penalty`;
  `symbols`: spared where the request says so); skipped (a real branch) when no slot has one, or when
  `any_penalized` [] bool says so."""
  r = slots.request
  pen, ngram = requests.repetition_penalty[r], requests.no_repeat_ngram[r]
  if any_penalized is None:
    any_penalized = jnp.any((pen != 1.0) | (ngram > 0))
  return jax.lax.cond(
      any_penalized,
      lambda: penalize_repeats(logits, slots.tokens, slots.num_out, pen, ngram, exempt, symbols,
                               requests.penalize_symbols[r]),
      lambda: logits)


def choose(logits: jax.Array, slots: Slots, requests: Requests,
           hints: Optional[StepHints] = None, exempt: Sequence[int] = (),
           symbols: Sequence[int] = ()) -> jax.Array:
  """[S] int32 tokens sampled with each slot's request settings (temperature 0 = greedy), after its
  repetition penalties (never on the ids in `exempt`; `symbols` see `ControlIds`); `hints`: see
  `step_hints`."""
  r = slots.request
  sampled, penalized = (None, None) if hints is None else (hints.any_sampled, hints.any_penalized)
  logits = apply_repeat_penalties(logits, slots, requests, exempt, penalized, symbols)
  return sample_logits(logits, step_keys(slots), requests.temperature[r], requests.top_k[r],
                       requests.top_p[r], sampled)
