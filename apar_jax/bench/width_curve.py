"""The verify-width curve: step time of a T-token forward over a cache, against T = 1.

A speculative or APAR step pays for the query tokens it carries; whether a wider tree pays off
depends on how this cost grows with T on the backend at hand (steep on a CPU, nearly flat on an
accelerator up to tens of tokens). Random weights are enough: the cost depends on shapes only.
"""

import dataclasses
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from apar_jax.model import CausalSpec, DenseCache, DenseCacheSpec, build_model


@dataclasses.dataclass(frozen=True)
class WidthPoint:
  dtype: str
  batch: int
  width: int  # query tokens per row
  step_ms: float  # median over the timed calls
  vs_width_1: float  # step time / step time at width 1 (same dtype and batch)


def forward_step_ms(model_cfg: ml_collections.ConfigDict, params, *, batch: int, width: int,
                    context: int, repeats: int) -> float:
  """Median ms of one jitted forward of `width` tokens per row over `context` cached tokens."""
  model = build_model(model_cfg)
  caches = tuple(DenseCache.zeros(batch, context + width, int(model_cfg.n_kv_heads),
                                  int(model_cfg.head_dim), jnp.dtype(model_cfg.dtype))
                 for _ in range(int(model_cfg.n_layers)))
  tokens = jnp.ones((batch, width), jnp.int32)  # [B, T]
  positions = jnp.broadcast_to(context + jnp.arange(width), (batch, width))
  spec = DenseCacheSpec(jnp.full((batch,), context, jnp.int32))
  step = jax.jit(lambda p, c: model.apply({'params': p}, tokens, positions, spec, c).logits)
  jax.block_until_ready(step(params, caches))  # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(step(params, caches))
    times.append(time.perf_counter() - t0)
  return 1000 * float(np.median(times))


def random_params(model_cfg: ml_collections.ConfigDict, seed: int = 0):
  """Random params of the model, built on the default device in the config's param dtype."""
  model = build_model(model_cfg)
  x = jnp.zeros((1, 1), jnp.int32)
  return jax.jit(lambda key: nn.unbox(model.init(key, x, x, CausalSpec())['params']))(
      jax.random.key(seed))


def width_curve(model_cfg: ml_collections.ConfigDict, *, widths: tuple[int, ...],
                batches: tuple[int, ...], dtypes: tuple[str, ...], context: int, repeats: int,
                deadline: float = float('inf')
                ) -> tuple[list[WidthPoint], list[tuple[str, int, int]]]:
  """(points, skipped): step times for every (dtype, batch, width), each against width 1 of the
  same dtype and batch, in that order until `deadline` (time.perf_counter()); what was not measured
  by then is listed as skipped."""
  points, skipped = [], []
  for dtype in dtypes:
    cfg = ml_collections.ConfigDict(model_cfg.to_dict())
    cfg.update(dtype=dtype, param_dtype=dtype)
    params = None
    for batch in batches:
      base = None
      for width in sorted(set((1,) + tuple(widths))):
        if time.perf_counter() > deadline:
          skipped += [(dtype, batch, width)] if width in widths else []
          continue
        params = random_params(cfg) if params is None else params
        ms = forward_step_ms(cfg, params, batch=batch, width=width, context=context,
                             repeats=repeats)
        base = ms if width == 1 else base
        if width in widths:
          points.append(WidthPoint(dtype, batch, width, ms, ms / base))
    del params
  return points, skipped
