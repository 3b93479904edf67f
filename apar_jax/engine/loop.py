"""The jitted device functions of the engine: the decode chunk (one `while_loop`), admit, prefill.

`run_chunk` frees the slots the host has drained, then runs up to `num_steps` decode steps while any
branch is unfinished. The host calls it once per chunk, so there is one device->host transfer per
chunk, not per token. Each function is compiled once per (model config, capacities, control ids,
mode, attention implementation): `compiled_functions` caches them, so several `Engine`s of one
config share them.
"""

import dataclasses
import functools
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections

from apar_jax.engine import prefill, spec_state
from apar_jax.engine.spec_config import SpecConfig
from apar_jax.engine.spec_step import SpecStepConfig, spec_step
from apar_jax.engine.state import DONE, FREE, Capacities, EngineState, is_active, reset_state
from apar_jax.engine.step import StepConfig, decode_step
from apar_jax.engine.token_choice import ControlIds
from apar_jax.model import build_model


def run_chunk(params: Any, state: EngineState, drained: jax.Array, num_steps: jax.Array,
              cfg: StepConfig | SpecStepConfig) -> EngineState:
  """drained [S] bool: DONE slots whose outputs the host has read (they become FREE).

  Speculative modes (`SpecStepConfig`): params = (base params, drafter params)."""
  status = jnp.where(drained & (state.slots.status == DONE), FREE, state.slots.status)
  state = state.replace(slots=state.slots.replace(status=status))

  def cond(carry):
    st, i = carry
    return (i < num_steps) & jnp.any(is_active(st.slots.status))

  def body(carry):
    st, i = carry
    if isinstance(cfg, SpecStepConfig):
      return spec_step(params[0], params[1], st, cfg), i + 1
    return decode_step(params, st, cfg), i + 1

  state, _ = jax.lax.while_loop(cond, body, (state, jnp.zeros((), jnp.int32)))
  return state


@dataclasses.dataclass(frozen=True)
class EngineFunctions:
  """Jitted entry points; the state argument is donated in each."""
  run_chunk: Callable  # (params, state, drained [S], num_steps []) -> state
  admit: Callable  # (state, slot, request, prompt_len, last_token, max_new, temp, top_k, top_p,
  #                   key) -> state
  prefill_chunk: Callable  # (params, state, slot, tokens [C], start) -> state
  reset: Callable  # (state) -> empty state reusing the KV pools

  def cache_sizes(self) -> dict[str, int]:
    """Number of compiled versions of each function (1 each after the first run)."""
    return {f.name: getattr(self, f.name)._cache_size() for f in dataclasses.fields(self)}


@functools.lru_cache(maxsize=16)
def compiled_functions(model_cfg: ml_collections.FrozenConfigDict, caps: Capacities,
                       ids: ControlIds, apar: bool, attention_impl: str,
                       spec: Optional[SpecConfig] = None) -> EngineFunctions:
  """Builds the jitted functions once per key (several `Engine`s of one config share them).

  With `spec` (a speculative mode) every function takes params = (base params, drafter params)."""
  model = build_model(ml_collections.ConfigDict(model_cfg.to_dict()))
  cfg = StepConfig(model, caps, ids, apar, attention_impl)
  history = spec is not None and spec_state.uses_history(spec)
  base_params = (lambda p: p[0]) if spec is not None else (lambda p: p)  # noqa: E731
  step_cfg = cfg if spec is None else SpecStepConfig(cfg, spec)

  def run(params, state, drained, n):
    return run_chunk(params, state, drained, n, step_cfg)

  def adm(state, slot, request, prompt_len, last_token, *args):
    state = prefill.admit(state, slot, request, prompt_len, last_token, *args, caps=caps)
    if history:
      state = state.replace(spec=spec_state.history_admit(state.spec, slot, prompt_len, last_token))
    return state

  def pre(params, state, slot, tokens, start):
    state = prefill.prefill_chunk(base_params(params), state, slot, tokens, start, model, caps,
                                  attention_impl)
    if history:
      state = state.replace(spec=spec_state.history_prefill(state.spec, slot, tokens, start,
                                                            state.slots.length[slot]))
    return state

  reset = lambda state: reset_state(state.caches, caps).replace(spec=state.spec)  # noqa: E731

  return EngineFunctions(run_chunk=jax.jit(run, donate_argnums=(1,)),
                         admit=jax.jit(adm, donate_argnums=(0,)),
                         prefill_chunk=jax.jit(pre, donate_argnums=(1,)),
                         reset=jax.jit(reset, donate_argnums=(0,)))

