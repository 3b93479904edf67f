"""Data-shard step hints: decode time with shared hints against per-shard predicates.

    python -m apar_jax.bench.shard_hints --config=configs/smollm2_135m.py [--data=2]

With D > 1 data shards the engine's step runs under a `vmap`; a `lax.cond` whose predicate differs
per shard becomes a select that computes both branches (greedy decoding would run the sampler's sort
over the vocabulary every step). The engine decides "does any branch sample?" once for all shards
(`engine/device/step_hints.py`). This command builds the same engine twice, with the hints and with
each shard deciding alone (the program before them), checks both give the same tokens, and prints
the decode time of each, measured in turn (best of `--repeats`). Without an accelerator it fakes
`--data` CPU devices, which share the machine's cores: compare the two rows with each other only."""

import os
import sys

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (get_config()).',
                                          lock_config=False)
_DATA = flags.DEFINE_integer('data', 2, 'Data shards (mesh data axis); fake CPU devices if needed.')
_MODES = flags.DEFINE_list('modes', ['ar', 'apar', 'medusa'], 'Engine modes to measure.')
_CONCURRENT = flags.DEFINE_integer('concurrent', 4, 'Greedy requests decoded together.')
_NEW = flags.DEFINE_integer('new_tokens', 32, 'New tokens per request.')
_REPEATS = flags.DEFINE_integer('repeats', 3, 'Timed repeats (best is reported).')

PROMPTS = ['List three tips for staying focused while studying.',
           'Explain how a bicycle gear works.',
           'Name three rivers in Europe and one fact about each.',
           'Write two sentences about the moon.']


def _fake_devices(count: int) -> None:
  """Asks XLA for `count` host devices when jax is not imported yet (a no-op on accelerators)."""
  flag = '--xla_force_host_platform_device_count'
  if 'jax' not in sys.modules and flag not in os.environ.get('XLA_FLAGS', ''):
    os.environ['XLA_FLAGS'] = f'{os.environ.get("XLA_FLAGS", "")} {flag}={count}'.strip()


def _engines(config, mode, runtime):
  """(with hints, each shard alone): two engines of one mode on the same params."""
  from apar_jax.engine.device import loop
  from apar_jax.engine.setup.build import build_engine
  build = lambda: build_engine(config, mode, params=runtime.params,  # noqa: E731
                               tokenizer=runtime.tokenizer, mesh=runtime.mesh)
  hinted = build()
  shared_step_fn = loop.step_fn

  def alone_step_fn(cfg, rows=None):
    step = shared_step_fn(cfg, rows)
    return lambda params, state, hints: step(params, state, None)  # per-shard predicates

  loop.step_fn = alone_step_fn
  loop.compiled_functions.cache_clear()
  try:
    alone = build()
  finally:
    loop.step_fn = shared_step_fn
    loop.compiled_functions.cache_clear()
  return hinted, alone


def main(argv: list[str]) -> None:
  del argv
  import jax

  from apar_jax.engine.host.requests import Request
  from apar_jax.bench.timing import best_interleaved, load_with_prompts
  config = _CONFIG.value
  if config is None:
    raise app.UsageError('pass --config=configs/<name>.py')
  if jax.device_count() < _DATA.value:
    raise app.UsageError(f'--data={_DATA.value} needs that many devices; {jax.device_count()} here')
  config.mesh.update(data=_DATA.value, fsdp=1, tensor=1)
  config.engine.update(max_slots=max(config.engine.max_slots, 8), max_requests=_CONCURRENT.value)
  runtime, ids = load_with_prompts(config, PROMPTS)
  requests = [Request(token_ids=ids[i % len(ids)], max_new_tokens=_NEW.value)
              for i in range(_CONCURRENT.value)]
  print(f'[shard_hints] {config.name}: {_DATA.value} data shards on {jax.device_count()} '
        f'{jax.default_backend()} devices, {len(requests)} greedy requests x {_NEW.value} tokens, '
        f'best of {_REPEATS.value}', file=sys.stderr)
  for mode in _MODES.value:
    hinted, alone = _engines(config, mode, runtime)
    same = ([r.token_ids for r in hinted.generate(requests)] ==
            [r.token_ids for r in alone.generate(requests)])  # also compiles both
    steps = hinted.last_stats['steps']
    t = best_interleaved({'hints': lambda: hinted.generate(requests),
                          'alone': lambda: alone.generate(requests)}, _REPEATS.value)
    print(f'{mode}: shared hints {1e3 * t["hints"] / steps:.1f} ms/step, per-shard predicates '
          f'{1e3 * t["alone"] / steps:.1f} ms/step ({steps} steps): {t["alone"] / t["hints"]:.2f}x '
          f'faster with hints; same tokens: {same}')


def run() -> None:
  """Entry point: fakes the CPU devices before jax loads, then runs `main` under absl."""
  count = next((a.split('=', 1)[1] for a in sys.argv if a.startswith('--data=')), '2')
  _fake_devices(int(count))
  app.run(main)


if __name__ == '__main__':
  run()
