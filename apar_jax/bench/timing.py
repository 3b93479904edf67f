"""What the benchmark commands (`bench.engine_modes`, `bench.spec_modes`) share: loading the model with
encoded prompts, and timing runs in turn. No absl flags here: both commands define the same ones."""

import time
from typing import TYPE_CHECKING, Any, Callable

import ml_collections
from absl import app

if TYPE_CHECKING:
  from apar_jax.runtime import Runtime


def load_with_prompts(config: ml_collections.ConfigDict | None,
                      prompts: list[str]) -> tuple['Runtime', list[list[int]]]:
  """(runtime, ids): the config's model, params and tokenizer, and each prompt encoded as a user
  turn in the config's chat template. A usage error without a config (no `--config`)."""
  if config is None:
    raise app.UsageError('pass --config=configs/<name>.py')
  from apar_jax.runtime import load_runtime
  from apar_jax.tokenization import encode_user_prompt
  runtime = load_runtime(config)
  ids = [encode_user_prompt(runtime.tokenizer, p, config.tokenizer) for p in prompts]
  return runtime, ids


def best_interleaved(fns: dict[str, Callable[[], Any]], repeats: int) -> dict[str, float]:
  """Best wall time of each function, running them in turn `repeats` times (a shared, noisy machine
  slows all of them alike within one round)."""
  best = {name: float('inf') for name in fns}
  for _ in range(repeats):
    for name, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      best[name] = min(best[name], time.perf_counter() - t0)
  return best
