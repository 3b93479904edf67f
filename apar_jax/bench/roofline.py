"""The batch-1 memory roofline of this machine for the benchmarked weights.

A batch-1 decode step reads every weight once, so it cannot beat weight bytes / memory bandwidth
(measured here, reusing `apar_jax.bench.bandwidth`). Other jobs on a shared machine eat
bandwidth, so it is measured at the start and at the end of the run and the best is the bound. Each
mode's measured step time is reported against it (`step_vs_roofline`).
"""

import sys
from typing import Any, Sequence

from apar_jax.bench.bandwidth import measure_bandwidth_gbps, param_bytes


def bandwidth_sample(num_bytes: int = 1 << 30) -> float:
  """One measurement of memory bandwidth (GB/s, best of a few reads of `num_bytes`)."""
  print(f'[bench] measuring memory bandwidth ({num_bytes / 2**20:.0f} MiB read)', file=sys.stderr)
  return measure_bandwidth_gbps(num_bytes)


def roofline(params: Any, samples_gbps: Sequence[float]) -> dict[str, Any]:
  """{'bandwidth_gbps' (best sample), 'bandwidth_samples_gbps', 'weight_bytes', 'step_ms'}."""
  bandwidth = max(samples_gbps)
  weight = param_bytes(params)
  return {'bandwidth_gbps': bandwidth, 'bandwidth_samples_gbps': list(samples_gbps),
          'weight_bytes': weight, 'step_ms': 1e3 * weight / (bandwidth * 1e9)}
