"""Batch-1 fp32 greedy decode: our dense loop vs transformers `generate` on the same weights, and the
step time against the memory roofline.

    python -m apar_jax.bench.decode_vs_transformers [--new_tokens=64] [--repeats=5]

The three measurements are interleaved (one of each per repetition) so that the shared machine's load
hits them alike; the table gives best and median over repetitions, after a warm-up. The roofline is a
jitted full read of an fp32 array as large as the weights (the bytes a batch-1 step must stream).
"""

import os
import statistics
import sys
import time

from absl import app, flags

NEW_TOKENS = flags.DEFINE_integer('new_tokens', 64, 'Tokens to generate per run.')
REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repetitions (after one warm-up).')
PEERS = flags.DEFINE_bool('peers', True, 'Also time transformers generate.')
PROMPT = 'Explain how a bicycle works, step by step.'


def _load_config():
  from apar_jax.defaults import presets
  return presets.smollm2_135m()


def make_roofline_probe(num_bytes: int):
  """A function timing the fastest full read of `num_bytes` (the weights' size) we can find, in s.

  Three readers of the same byte count: a jitted full reduction, numpy's SIMD sum, and one jitted
  matrix-vector product (the multi-threaded pattern a decode step uses). The bound is the fastest.
  """
  import jax
  import jax.numpy as jnp
  import numpy as np
  cols = 4096
  rows = num_bytes // 4 // cols
  flat = jnp.ones((rows * cols,), jnp.float32)
  matrix = flat.reshape(rows, cols)
  vec = jnp.ones((1, rows), jnp.float32)
  host = np.ones((rows * cols,), np.float32)
  reduce = jax.jit(jnp.sum)
  matvec = jax.jit(lambda v, w: v @ w)
  readers = [lambda: reduce(flat).block_until_ready(), lambda: matvec(vec, matrix).block_until_ready(),
             lambda: host.sum()]
  for read in readers:
    read()

  def probe() -> float:
    best = float('inf')
    for read in readers:
      t0 = time.perf_counter()
      read()
      best = min(best, time.perf_counter() - t0)
    return best * num_bytes / (rows * cols * 4)
  return probe


def make_ours(runtime, ids, n_new):
  """A function running our dense loop once; returns seconds per decode step (prefill excluded)."""
  from apar_jax.generate import DenseGenerator
  tok = runtime.tokenizer
  gen = DenseGenerator(runtime.model, runtime.params, stop_ids=(), chunk_steps=n_new,
                       banned_ids=(tok.fork_id, tok.child_id))
  gen.generate([ids], n_new)  # compile

  def run() -> float:
    r = gen.generate([ids], n_new)
    return r['decode_s'] / (len(r['tokens'][0]) - 1)
  return run


def make_transformers(ids, n_new):
  """A function timing transformers greedy decode per token (fp32, CPU), or None if not installed."""
  try:
    import torch
    import transformers
  except ImportError as e:
    print(f'[bench] transformers peer skipped: {e}', file=sys.stderr)
    return None
  from apar_jax.weights import default_gguf_path
  path = default_gguf_path()
  model = transformers.AutoModelForCausalLM.from_pretrained(
      os.path.dirname(path), gguf_file=os.path.basename(path), dtype=torch.float32).eval()
  inp = torch.tensor([ids])

  def timed(n):
    kwargs = dict(max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=2)
    t0 = time.perf_counter()
    with torch.no_grad():
      model.generate(inp, **kwargs)
    return time.perf_counter() - t0

  timed(n_new)

  def run() -> float:
    # Decode time only: a full run minus a prefill-only run, like our figure.
    return (timed(n_new) - timed(1)) / (n_new - 1)
  return run


def main(argv):
  del argv
  from apar_jax.bench.bandwidth import param_bytes
  from apar_jax.runtime import load_runtime
  from apar_jax.tokenization import encode_user_prompt
  runtime = load_runtime(_load_config())
  ids = encode_user_prompt(runtime.tokenizer, PROMPT, runtime.config.tokenizer)
  n_new, repeats = NEW_TOKENS.value, REPEATS.value
  weight_b = param_bytes(runtime.params)
  runners = {'roofline': make_roofline_probe(weight_b), 'ours': make_ours(runtime, ids, n_new)}
  hf = make_transformers(ids, n_new) if PEERS.value else None
  if hf is not None:
    runners['transformers'] = hf
  times: dict[str, list[float]] = {k: [] for k in runners}
  for _ in range(repeats):
    for name, run in runners.items():
      times[name].append(run())
  best = {k: min(v) * 1e3 for k, v in times.items()}
  med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
  print('| measure | best | median |\n|---|---|---|')
  print(f'| weight bytes (fp32) | {weight_b / 1e6:.0f} MB | |')
  print(f'| memory roofline: one read of the weights | {best["roofline"]:.1f} ms '
        f'({weight_b / best["roofline"] / 1e6:.1f} GB/s) | {med["roofline"]:.1f} ms |')
  print(f'| apar-jax decode step | {best["ours"]:.1f} ms ({1e3 / best["ours"]:.1f} tokens/s) | '
        f'{med["ours"]:.1f} ms ({1e3 / med["ours"]:.1f} tokens/s) |')
  print(f'| apar-jax step / roofline | {best["ours"] / best["roofline"]:.2f}x | '
        f'{med["ours"] / med["roofline"]:.2f}x |')
  if 'transformers' in best:
    print(f'| transformers decode step | {best["transformers"]:.1f} ms '
          f'({1e3 / best["transformers"]:.1f} tokens/s) | {med["transformers"]:.1f} ms |')
    print(f'| apar-jax speed-up over transformers | {best["transformers"] / best["ours"]:.2f}x | '
          f'{med["transformers"] / med["ours"]:.2f}x |')
  print(f'\nprompt {len(ids)} tokens, {n_new} new tokens, {repeats} interleaved repetitions after '
        f'warm-up, batch 1, fp32, greedy', file=sys.stderr)


if __name__ == '__main__':
  app.run(main)
