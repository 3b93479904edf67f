"""Engine benchmark: batch-1 AR against a bare jitted single-step loop; many concurrent requests.

    python -m apar_jax.bench.engine_modes --config=configs/smollm2_135m.py [--new_tokens=96]

Prints one line per measurement (stdout) and progress (stderr). Every figure is a ratio or rate
measured in the same run, after warm-up (compilation excluded); compared runs are interleaved and
the best of `--repeats` is kept, so load from other processes hits them alike.
  1. bare loop: a Python loop over one jitted decode step (dense KV cache, greedy, cache donated):
     the fastest plain way to decode one sequence; no host sync until the end (async dispatch).
  2. engine AR, batch 1 (max_slots=1), with `chunk_steps` steps per device call, and with
     `chunk_steps=1` (a host sync after every token) to show what per-step syncs would cost.
  3. engine with `--concurrent` requests at once (max_slots = concurrent): tokens/s, decode steps,
     peak KV pages, in AR and APAR mode.
"""

import functools
import sys
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
from absl import app, flags
from ml_collections import config_flags

from apar_jax.engine.host.engine import Engine, engine_section
from apar_jax.engine.setup.build import build_engine
from apar_jax.engine.host.requests import Request
from apar_jax.bench.timing import best_interleaved, load_with_prompts
from apar_jax.model import DenseCache, DenseCacheSpec, Transformer

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (get_config()).',
                                          lock_config=False)
_NEW = flags.DEFINE_integer('new_tokens', 96, 'Tokens per answer in the batch-1 comparison.')
_CONCURRENT = flags.DEFINE_integer('concurrent', 16, 'Requests decoded together in part 3.')
_CONCURRENT_NEW = flags.DEFINE_integer('concurrent_new_tokens', 64, 'Tokens per answer in part 3.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed repeats (best is reported).')
_CHUNK = flags.DEFINE_integer('chunk_steps', 32, 'Engine decode steps per device call.')
_MODES = flags.DEFINE_list('modes', ['ar', 'apar'], 'Engine modes for the concurrent run.')

PROMPTS = ['Write a short story about a robot who learns to paint.',
           'List five tips for staying productive when working from home.',
           'Explain how a bicycle works.', 'What are the benefits of reading books?',
           'Describe the water cycle.', 'Give me three ideas for a birthday party.',
           'How do I make a cup of tea?', 'Write a poem about autumn leaves.']


def _log(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def bare_loop(model: Transformer, params: Any, prompt: list[int], new_tokens: int,
              max_len: int) -> Callable[[], Any]:
  """A compiled function that prefills `prompt` and greedily decodes `new_tokens`, one jitted step
  per token (dense cache, donated), with no host sync until the end."""
  cfg = model.cfg

  @jax.jit
  def prefill(params, tokens):
    caches = tuple(DenseCache.zeros(1, max_len, cfg.n_kv_heads, cfg.head_dim, jnp.dtype(cfg.dtype))
                   for _ in range(cfg.n_layers))
    pos = jnp.arange(tokens.shape[1])[None]
    out = model.apply({'params': params}, tokens, pos, DenseCacheSpec(jnp.zeros((1,), jnp.int32)),
                      caches)
    return out.caches, jnp.argmax(out.logits[:, -1], -1).astype(jnp.int32)[:, None]

  @functools.partial(jax.jit, donate_argnums=(1,))
  def step(params, caches, token, length):
    out = model.apply({'params': params}, token, length[:, None], DenseCacheSpec(length), caches)
    return out.caches, jnp.argmax(out.logits[:, -1], -1).astype(jnp.int32)[:, None], length + 1

  def run():
    caches, tok = prefill(params, jnp.asarray([prompt], jnp.int32))
    length = jnp.asarray([len(prompt)], jnp.int32)
    for _ in range(new_tokens - 1):
      caches, tok, length = step(params, caches, tok, length)
    return jax.block_until_ready(tok)

  run()  # compile
  return run


def _engine(config: ml_collections.ConfigDict, mode: str, params: Any, tokenizer: Any,
            page_size: int, **workload: Any) -> Engine:
  """An engine of `mode` with `page_size`-token pages, sized for `workload` (`engine.setup`)."""
  config = ml_collections.ConfigDict(config.to_dict())
  config.engine = ml_collections.ConfigDict(dict(engine_section(config).to_dict(),
                                                 page_size=page_size))
  return build_engine(config, mode, params=params, tokenizer=tokenizer, **workload)


def main(argv: list[str]) -> None:
  del argv
  config = _CONFIG.value
  runtime, ids = load_with_prompts(config, PROMPTS)
  tok = runtime.tokenizer
  new = _NEW.value
  page = 16
  bare_pages = -(-(len(ids[0]) + new) // page)  # the bare loop's dense cache, in pages
  _log(f'[bench] {config.name}: {jax.device_count()} {jax.default_backend()} device(s); prompt '
       f'{len(ids[0])} tokens, {new} new tokens, best of {_REPEATS.value}')

  # 1 + 2. bare loop and batch-1 engine, measured in turn
  bare = bare_loop(runtime.model, runtime.params, ids[0], new, bare_pages * page)
  eng = _engine(config, 'ar', runtime.params, tok, page, max_prompt_len=len(ids[0]),
                max_new_tokens=new, slots=1, requests=1, chunk_steps=_CHUNK.value)
  eng.warmup()
  req = [Request(token_ids=ids[0], max_new_tokens=new)]
  n = eng.generate(req)[0].num_generated_tokens
  syncs = {}

  def engine_run(chunk):
    def run():
      eng.generate(req, chunk_steps=chunk)
      syncs[chunk] = (eng.last_stats['chunks'], eng.last_stats['steps'])
    return run

  t = best_interleaved({'bare': bare, 'chunked': engine_run(_CHUNK.value),
                        'per_step': engine_run(1)}, _REPEATS.value)
  print(f'bare_loop batch=1: {new / t["bare"]:.2f} tokens/s ({1e3 * t["bare"] / new:.1f} ms/token)')
  for name, chunk in (('chunked', _CHUNK.value), ('per_step', 1)):
    print(f'engine_ar batch=1 chunk_steps={chunk}: {n / t[name]:.2f} tokens/s '
          f'({1e3 * t[name] / n:.1f} ms/token), {syncs[chunk][0]} host syncs for {syncs[chunk][1]} '
          f'steps, {(n / t[name]) / (new / t["bare"]):.3f}x bare loop')

  # 3. concurrent requests, modes measured in turn
  c = _CONCURRENT.value
  reqs = [Request(token_ids=ids[i % len(ids)], max_new_tokens=_CONCURRENT_NEW.value)
          for i in range(c)]
  engines, results = {}, {}
  for mode in _MODES.value:
    engines[mode] = _engine(config, mode, runtime.params, tok, page,
                            max_prompt_len=max(map(len, ids)),
                            max_new_tokens=_CONCURRENT_NEW.value, slots=c, requests=c,
                            chunk_steps=_CHUNK.value)
    engines[mode].warmup()
  t = best_interleaved({mode: (lambda m=mode: results.__setitem__(m, engines[m].generate(reqs)))
                        for mode in engines}, _REPEATS.value)
  for mode, eng in engines.items():
    tokens = sum(r.num_generated_tokens for r in results[mode])
    stats = eng.last_stats
    print(f'engine_{mode} concurrent={c}: {tokens / t[mode]:.2f} tokens/s, {tokens} tokens in '
          f'{stats["steps"]} steps, {sum(r.forks for r in results[mode])} forks, peak_kv_pages '
          f'{stats["peak_kv_pages"]} of {eng.caps.num_pages} ({page} tokens/page), '
          f'{stats["chunks"]} host syncs')


if __name__ == '__main__':
  app.run(main)
