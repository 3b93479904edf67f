"""How far two attention computations (kernel, reference, float64 oracle) may differ by rounding."""

import numpy as np

from apar_jax.testing.rounding import relative_bound


def attention_tolerance(q, k, v, *, scale: float, dtype: str, exact_reference: bool = False,
                        calls: int = 1, values: int = 1) -> float:
  """Absolute tolerance between two attention outputs over the inputs q, k, v.

  q [..., Hq, D], k and v [..., Hkv, D] (NaN garbage ignored). Each side computes the scores
  (D-term dot products, the scale and the soft cap), a softmax normaliser and a weighted sum over
  at most every key position, in float32: `relative_bound` bounds that chain relative to max |v|
  (the output is a convex combination of values). A score error e moves the output by at most
  2 e max |v| (softmax's sensitivity), so the scores' own rounding is amplified by the largest
  possible score, scale * max over pairs of sum |q_i| |k_i|. bf16: the inputs are the same bf16
  values on both sides; the probabilities enter P.V in bf16 and the output is rounded to bf16, two
  more roundings of 2^-8 each relative to max |v|. Against a float64 oracle only one side rounds.
  `calls`: the outputs are sums of that many attention calls (their errors add); `values`: how many
  output values are compared (the probabilistic bound's union over them).
  """
  d = np.shape(q)[-1]
  q_abs = np.abs(np.nan_to_num(np.asarray(q, np.float64))).reshape(-1, d)
  k_abs = np.abs(np.nan_to_num(np.asarray(k, np.float64))).reshape(-1, d)
  v_max = float(np.nanmax(np.abs(np.asarray(v, np.float64))))
  max_score = scale * float(np.max(q_abs @ k_abs.T))
  keys = k_abs.shape[0]  # every key position: at least any softmax's length
  values = max(values, 1)
  score_error = relative_bound(d + 2, np.float32, values=values) * max_score
  chain = relative_bound(3 * keys + 2, np.float32, values=values)
  per_side = (2 * score_error + chain) * v_max
  if str(dtype) == 'bfloat16':
    per_side += relative_bound(2, 'bfloat16', values=values) * v_max
  return (1 if exact_reference else 2) * calls * per_side
