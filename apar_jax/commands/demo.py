"""`python -m apar_jax demo`: answer one chat question with the default model and print decode speed."""

import sys
import time

import ml_collections

from apar_jax.commands.prompts import prompt_ids
from apar_jax.generate import DenseGenerator, SamplingParams
from apar_jax.runtime import load_runtime
from apar_jax.tokenization import IncrementalDecoder

QUESTION = 'Give me three short tips for staying focused while studying.'


def run(config: ml_collections.ConfigDict) -> None:
  t0 = time.perf_counter()
  runtime = load_runtime(config)
  print(f'[demo] loaded {config.name} ({config.model.n_layers} layers, d {config.model.d_model}) in '
        f'{time.perf_counter() - t0:.1f}s', file=sys.stderr)
  tok = runtime.tokenizer
  ids = prompt_ids(tok, QUESTION, config.tokenizer.chat_template, config.tokenizer.system_prompt,
                   raw=False)
  generator = DenseGenerator(runtime.model, runtime.params, stop_ids=tok.stop_ids,
                             banned_ids=(tok.fork_id, tok.child_id), chunk_steps=8)
  max_new = 160
  # Warm-up: compile prefill and the decode chunk once, so the figure below is decode speed only.
  generator.generate([ids], 9, SamplingParams())
  print(f'User: {QUESTION}\nAssistant: ', end='', flush=True)
  decoder = IncrementalDecoder(tok)

  def stream(_, new_ids):
    for t in new_ids:
      sys.stdout.write(decoder.push(t))
    sys.stdout.flush()

  result = generator.generate([ids], max_new, SamplingParams(), on_tokens=stream)
  n = len(result['tokens'][0])
  print()
  print(f'[demo] {n} tokens; prefill {len(ids)} '
        f'prompt tokens in {result["prefill_s"] * 1000:.0f} ms; decode '
        f'{(n - 1) / result["decode_s"]:.1f} tokens/s (batch 1, fp32, greedy)')
