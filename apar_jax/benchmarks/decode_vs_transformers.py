"""Batch-1 fp32 greedy decode: our dense loop vs transformers `generate` on the same weights, and the
step time against the memory roofline.

    python -m apar_jax.benchmarks.decode_vs_transformers [--new_tokens=128] [--repeats=3]

Prints a Markdown table; figures are medians over repeats after a warm-up, all measured in one run.
"""

import os
import statistics
import sys
import time

from absl import app, flags

from apar_jax.benchmarks.roofline import measure_bandwidth_gbps, param_bytes

NEW_TOKENS = flags.DEFINE_integer('new_tokens', 128, 'Tokens to generate per run.')
REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed repetitions (after one warm-up).')
PROMPT = 'Explain how a bicycle works, step by step.'


def _load_config():
  import importlib.util
  path = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'smollm2_135m.py')
  spec = importlib.util.spec_from_file_location('_smollm2_cfg', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def ours(runtime, ids, n_new, repeats):
  """Median decode tokens/s and ms/step of the dense loop (the first token comes from prefill)."""
  from apar_jax.generate import DenseGenerator
  tok = runtime.tokenizer
  gen = DenseGenerator(runtime.model, runtime.params, stop_ids=(), chunk_steps=32,
                       banned_ids=(tok.fork_id, tok.child_id))
  gen.generate([ids], n_new)  # compile
  step_ms = []
  for _ in range(repeats):
    r = gen.generate([ids], n_new)
    step_ms.append(r['decode_s'] / (len(r['tokens'][0]) - 1) * 1e3)
  ms = statistics.median(step_ms)
  return 1e3 / ms, ms


def transformers_generate(ids, n_new, repeats):
  """Median tokens/s of transformers greedy generate (fp32, CPU) on the same GGUF, or None."""
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
    model.generate(inp, **kwargs)
    return time.perf_counter() - t0

  with torch.no_grad():
    timed(n_new)
    # Decode time only: a full run minus a prefill-only run, like our figure (prefill excluded).
    per_token = [(timed(n_new) - timed(1)) / (n_new - 1) for _ in range(repeats)]
  return 1.0 / statistics.median(per_token)


def main(argv):
  del argv
  from apar_jax.runtime import load_runtime
  from apar_jax.tokenization import encode_chat
  runtime = load_runtime(_load_config())
  ids = encode_chat(runtime.tokenizer, [{'role': 'user', 'content': PROMPT}], 'chatml')
  n_new, repeats = NEW_TOKENS.value, REPEATS.value
  bw = measure_bandwidth_gbps()
  weight_b = param_bytes(runtime.params)
  roof_ms = weight_b / (bw * 1e9) * 1e3
  our_tps, our_ms = ours(runtime, ids, n_new, repeats)
  hf_tps = transformers_generate(ids, n_new, repeats)
  print(f'| measure | value |\n|---|---|')
  print(f'| measured memory bandwidth | {bw:.1f} GB/s |')
  print(f'| weight bytes (fp32) | {weight_b / 1e6:.0f} MB |')
  print(f'| roofline step time | {roof_ms:.1f} ms |')
  print(f'| apar-jax decode | {our_tps:.1f} tokens/s ({our_ms:.1f} ms/step, '
        f'{our_ms / roof_ms:.2f}x roofline) |')
  if hf_tps is not None:
    print(f'| transformers generate | {hf_tps:.1f} tokens/s |')
    print(f'| apar-jax / transformers | {our_tps / hf_tps:.2f}x |')
  print(f'\nprompt {len(ids)} tokens, {n_new} new tokens, median of {repeats} after warm-up, '
        f'batch 1, fp32, greedy', file=sys.stderr)


if __name__ == '__main__':
  app.run(main)
