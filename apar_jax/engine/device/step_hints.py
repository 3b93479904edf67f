"""What a decode step may branch on, decided once over every data shard.

Under the data-shard `vmap` (D > 1, `data_shards.per_shard`) a `lax.cond` whose predicate differs per
shard becomes a select that computes both branches: greedy decoding would sort every row's logits
for top-p each step, and speculative greedy acceptance would run rejection sampling too. A predicate
computed over the whole stacked state outside the `vmap` is one value for every shard, so the `cond`
stays a real branch. Hints over-approximate: the general branch gives greedy rows exactly the greedy
result, so "some slot somewhere samples" is always safe.
"""

from typing import Callable, Optional

import flax.struct
import jax
import jax.numpy as jnp

from apar_jax.engine.device.state import EngineState, is_active


@flax.struct.dataclass
class StepHints:
  """Shared by every shard in a step."""
  any_sampled: jax.Array  # [] bool: an unfinished branch of some shard has temperature > 0
  any_penalized: jax.Array  # [] bool: ... has a repetition penalty or a no-repeat n-gram size
  across_shards: bool = flax.struct.field(pytree_node=False, default=False)  # made over D > 1 shards


def loop_flags(state: EngineState) -> tuple[jax.Array, StepHints]:
  """(whether any branch is unfinished [] bool, the next step's hints) of one shard's state or of
  the stacked state `[D, ...]` (then over all shards, in one reduction: one all-reduce per step).

  Children spawned during a step belong to an active slot's request, so the step's start covers
  them; a request admitted between chunks gets its hints when the next chunk starts.
  """
  slots, requests = state.slots, state.requests
  active = is_active(slots.status)  # [..., S]
  per_slot = lambda a: jnp.take_along_axis(a, slots.request, axis=-1)  # noqa: E731  [..., S]
  penalized = ((per_slot(requests.repetition_penalty) != 1.0)
               | (per_slot(requests.no_repeat_ngram) > 0))
  rows = jnp.stack([active, active & (per_slot(requests.temperature) > 0), active & penalized],
                   axis=-1)  # [..., S, 3]
  flags = jnp.any(rows, axis=tuple(range(rows.ndim - 1)))  # [3]
  return flags[0], StepHints(any_sampled=flags[1], any_penalized=flags[2],
                             across_shards=active.ndim > 1)


def refine_if(pred: jax.Array, refine: Callable[[], jax.Array], unchanged: Callable[[], jax.Array],
              hints: Optional[StepHints]) -> jax.Array:
  """`lax.cond(pred, refine, unchanged)` for a predicate only the step itself knows (one per
  shard); `refine` must give `unchanged()` wherever `pred` would be False. Under the shard vmap
  such a cond would become a select of both branches, and every cond nested in them a select too
  (the sampler's sort included), so with shared hints `refine` simply runs."""
  if hints is not None and hints.across_shards:
    return refine()
  return jax.lax.cond(pred, refine, unchanged)
