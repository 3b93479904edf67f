"""The serving load over HTTP next to the same load in process, per mode, in one run.

    python -m apar_jax.bench.http_serving --config=configs/apar_smollm2_135m.py \
        --serving_modes=ar,apar [--serving_requests=16 --serving_rate=2 --max_new_tokens=48]
    python -m apar_jax bench --serving_urls=http://127.0.0.1:8000,http://127.0.0.1:8001

The first form builds each mode's engine once, sized as the `bench` serving load sizes it, runs the
Poisson load on it in process (`bench.serving.one_load`), then serves it on a local port and sends
the same load as streamed HTTP requests (`bench.http_load`); `--serving_repeats` rounds of both,
medians reported. The second form only sends the HTTP load to servers already running (any
OpenAI-compatible one), labelled by what their `/health` or `/v1/models` says. The mode list
decodes one model: `--config` (APAR modes merge the APAR adapter, as `serve` does, so pass the
fine-tune's config to compare AR and APAR on the same weights).
"""

import asyncio
import json
import os
import statistics
import sys
from typing import Any, Optional, Sequence

import httpx
import ml_collections

from apar_jax import cli_flags
from apar_jax.bench import flags as bench_flags
from apar_jax.engine.setup.build import sized_config
from apar_jax.bench.http_load import http_load
from apar_jax.bench.prompts import load_prompts
from apar_jax.bench.serving import one_load, poisson_arrivals
from apar_jax.engine import Request
from apar_jax.tokenization import encode_user_prompt

DEFAULT_MAX_NEW_TOKENS = 48
FIELDS = ('throughput_tps', 'latency_p50', 'latency_p90', 'latency_p99', 'ttft_p50', 'ttft_p90')


def _flat(figures: dict[str, Any]) -> dict[str, Optional[float]]:
  lat, ttft = figures['latency_s'], figures['ttft_s']
  return {'throughput_tps': figures['throughput_tps'], 'latency_p50': lat['p50'],
          'latency_p90': lat['p90'], 'latency_p99': lat['p99'], 'ttft_p50': ttft['p50'],
          'ttft_p90': ttft['p90'], 'generated_tokens': figures['generated_tokens'],
          'forks': figures['forks']}


def _median(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
  keys = runs[0].keys()
  return {k: statistics.median(r[k] for r in runs if r[k] is not None)
          if any(r[k] is not None for r in runs) else None for k in keys}


def _server_label(url: str) -> str:
  try:
    health = httpx.get(f'{url.rstrip("/")}/health', timeout=10).json()
    if 'mode' in health:
      return f'{health.get("model", "?")} {health["mode"]}'
  except (httpx.HTTPError, ValueError):
    pass
  try:
    return httpx.get(f'{url.rstrip("/")}/v1/models', timeout=10).json()['data'][0]['id']
  except (httpx.HTTPError, ValueError, KeyError, IndexError):
    return url


def load_plan() -> tuple[list[str], list[float]]:
  """The bench's serving requests: its prompts in turn, Poisson arrivals from --seed."""
  f = bench_flags
  prompts = [p.prompt for p in load_prompts(cli_flags.PROMPTS_FILE.value)]
  seed = cli_flags.SEED.value or 0
  arrivals = poisson_arrivals(f.SERVING_REQUESTS.value, f.SERVING_RATE.value, seed)
  return [prompts[i % len(prompts)] for i in range(len(arrivals))], arrivals


def run_against_urls(urls: Sequence[str], max_new: int) -> dict[str, Any]:
  """Only the HTTP load, against running servers; {label: median figures}."""
  prompts, arrivals = load_plan()
  rows: dict[str, Any] = {}
  for url in urls:
    runs = [_flat(asyncio.run(http_load(url, prompts, arrivals, max_tokens=max_new)))
            for _ in range(bench_flags.SERVING_REPEATS.value)]
    rows[f'{_server_label(url)} (HTTP)'] = _median(runs)
  return rows


def run_side_by_side(config: ml_collections.ConfigDict, modes: Sequence[str],
                     max_new: int) -> dict[str, Any]:
  """Per mode: the load in process and over HTTP on one engine; {row label: median figures}."""
  from apar_jax.mode_weights import config_for_mode
  from apar_jax.runtime import load_runtime
  from apar_jax.serving.launch import ServerThread, build_server
  f = bench_flags
  prompts, arrivals = load_plan()
  rows: dict[str, Any] = {}
  for mode in modes:
    runtime = load_runtime(config_for_mode(config, mode))
    ids = [encode_user_prompt(runtime.tokenizer, p, runtime.config.tokenizer) for p in prompts]
    sized = sized_config(runtime.config, mode, max_prompt_len=max(map(len, ids)),
                         max_new_tokens=max_new, slots=f.SERVING_SLOTS.value,
                         requests=f.SERVING_SLOTS.value,
                         num_pages=f.SERVING_PAGE_BUDGET.value,
                         chunk_steps=f.SERVING_CHUNK_STEPS.value)
    server = build_server(sized, mode, runtime=runtime, max_waiting=len(prompts))
    engine = server.worker.engine
    engine.warmup()
    requests = [Request(token_ids=i, max_new_tokens=max_new, arrival_s=a)
                for i, a in zip(ids, arrivals)]
    local, remote = [], []
    thread = ServerThread(server)
    for rep in range(f.SERVING_REPEATS.value):
      local.append(_flat(one_load(engine, requests)))
      print(f'[http_serving] {mode} in process, run {rep + 1}: '
            f'{local[-1]["throughput_tps"]:.1f} tokens/s', file=sys.stderr)
    thread.start()
    try:
      assert thread.worker.wait_ready(600), thread.worker.failure
      for rep in range(f.SERVING_REPEATS.value):
        remote.append(_flat(asyncio.run(http_load(thread.url, prompts, arrivals,
                                                  max_tokens=max_new))))
        print(f'[http_serving] {mode} over HTTP, run {rep + 1}: '
              f'{remote[-1]["throughput_tps"]:.1f} tokens/s', file=sys.stderr)
    finally:
      thread.stop()
    rows[f'{mode} (in process)'] = _median(local)
    rows[f'{mode} (HTTP)'] = _median(remote)
  return rows


def markdown(rows: dict[str, Any]) -> str:
  """One row per load; the ratio is against the first row of the same path (in process / HTTP)."""
  lines = ['| load | tokens/s | vs first (same path) | p50 s | p90 s | p99 s | TTFT p50 s | '
           'TTFT p90 s | tokens | forks |', '|---|---|---|---|---|---|---|---|---|---|']
  fmt = lambda v, d=2: '-' if v is None else f'{v:.{d}f}'  # noqa: E731
  for name, r in rows.items():
    path = name.rsplit(' (', 1)[-1]
    base = next(v for k, v in rows.items() if k.endswith(path))
    ratio = (r['throughput_tps'] / base['throughput_tps']
             if base and base['throughput_tps'] and r['throughput_tps'] else None)
    lines.append(f'| {name} | {fmt(r["throughput_tps"], 1)} | {fmt(ratio)} | '
                 f'{fmt(r["latency_p50"])} | {fmt(r["latency_p90"])} | {fmt(r["latency_p99"])} | '
                 f'{fmt(r["ttft_p50"])} | {fmt(r["ttft_p90"])} | {r["generated_tokens"]:.0f} | '
                 f'{r["forks"]:.0f} |')
  return '\n'.join(lines)


def run(config: ml_collections.ConfigDict) -> None:
  max_new = cli_flags.MAX_NEW_TOKENS.value or DEFAULT_MAX_NEW_TOKENS
  urls = bench_flags.SERVING_URLS.value
  if urls:
    rows = run_against_urls(urls, max_new)
  else:
    rows = run_side_by_side(config, bench_flags.SERVING_MODES.value, max_new)
  out_dir = cli_flags.OUT_DIR.value or os.path.join('runs', 'http_serving')
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, 'http_serving.json')
  with open(path, 'w', encoding='utf-8') as fh:
    json.dump({'command': ' '.join(sys.argv), 'rows': rows}, fh, indent=1)
  print(markdown(rows))
  print(f'[http_serving] wrote {path}', file=sys.stderr)


if __name__ == '__main__':
  from apar_jax.cli_standalone import run_standalone
  run_standalone(run)
