"""The memory roofline of a batch-1 decode step: weight bytes / measured memory bandwidth."""

import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def measure_bandwidth_gbps(num_bytes: int = 1 << 30, repeats: int = 7) -> float:
  """Best read bandwidth (GB/s) of a jitted full reduction over a `num_bytes` fp32 array."""
  x = jnp.ones((num_bytes // 4,), jnp.float32)
  reduce = jax.jit(lambda a: jnp.sum(a))
  reduce(x).block_until_ready()
  best = float('inf')
  for _ in range(repeats):
    t0 = time.perf_counter()
    reduce(x).block_until_ready()
    best = min(best, time.perf_counter() - t0)
  del x
  return num_bytes / best / 1e9


def param_bytes(params: Any) -> int:
  """Bytes of every array in a pytree (a tied embedding is counted once: it is one array)."""
  return int(sum(np.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(params)))


def roofline_step_s(params: Any, bandwidth_gbps: float) -> float:
  """Lower bound on a batch-1 step: every weight byte read once."""
  return param_bytes(params) / (bandwidth_gbps * 1e9)
