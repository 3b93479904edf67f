"""Small statistics used by the report: spread over repetitions and latency percentiles."""

import math
import statistics
from typing import Optional, Sequence


def spread(values: Sequence[Optional[float]]) -> Optional[dict[str, float]]:
  """{'median', 'min', 'max', 'n'} of the finite values, or None when there are none."""
  vals = [float(v) for v in values if v is not None and math.isfinite(v)]
  if not vals:
    return None
  return {'median': statistics.median(vals), 'min': min(vals), 'max': max(vals), 'n': len(vals)}


def percentile(values: Sequence[float], q: float) -> Optional[float]:
  """The q-th percentile (0..100) with linear interpolation between order statistics."""
  vals = sorted(float(v) for v in values)
  if not vals:
    return None
  pos = (len(vals) - 1) * q / 100.0
  lo, hi = math.floor(pos), math.ceil(pos)
  return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def ratio(num: Optional[float], den: Optional[float]) -> Optional[float]:
  """num / den, or None when either is missing or den is 0."""
  if num is None or den is None or den == 0:
    return None
  return num / den
