"""Serving load: N requests arrive by a Poisson process into one engine with a fixed KV page budget.

Every serving mode gets the same engine capacities (slots, page budget, chunk steps) and the same
requests with the same arrival times (seeded), the prompts cycling through the benchmark set. The
engine admits a request once its `arrival_s` has passed and its worst-case pages are free, so at
high load requests queue and the page budget decides how many decode together; branches that end
free their pages early (APAR's serving claim: more throughput, lower latency).
"""

import statistics
import sys
import time
import traceback
from typing import Any, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from apar_jax.bench.engines import capacities
from apar_jax.engine.setup.build import build_engine, sized_config
from apar_jax.bench.models import APAR_AR, BenchModels
from apar_jax.bench.stats import percentile, ratio, spread
from apar_jax.engine.host.requests import ChunkEvent, DoneEvent, Request, TokensEvent
from apar_jax.modes import is_apar_mode

SERVING_FIELDS = ('mode', 'status', 'reason', 'compile_s', 'capacities', 'requests', 'completed',
                  'generated_tokens', 'decode_steps', 'forks', 'duration_s', 'throughput_tps',
                  'throughput_vs_ar', 'latency_s', 'latency_p50_vs_ar', 'latency_p90_vs_ar',
                  'ttft_s', 'peak_kv_pages', 'page_budget', 'timeline')
"""Every serving entry of the report has all of these keys (None where a figure is missing)."""


def poisson_arrivals(n: int, rate: float, seed: int) -> list[float]:
  """Arrival times (s) of `n` requests at `rate` per second: exponential gaps from a seeded RNG."""
  gaps = np.random.default_rng(seed).exponential(1.0 / rate, size=n)
  return np.cumsum(gaps).tolist()


def percentiles(values: Sequence[float]) -> dict[str, Optional[float]]:
  return {'p50': percentile(values, 50), 'p90': percentile(values, 90),
          'p99': percentile(values, 99),
          'mean': statistics.fmean(values) if values else None}


def one_load(engine: Any, requests: Sequence[Request]) -> dict[str, Any]:
  """Runs the load once; figures of this run (times on the engine's clock, from the call)."""
  arrivals = [r.arrival_s for r in requests]
  first_token: dict[int, float] = {}
  results: dict[int, Any] = {}
  timeline: list[dict[str, float]] = []
  now = 0.0
  for event in engine.stream(requests, stream_tokens=True, chunk_events=True):
    if isinstance(event, ChunkEvent):
      now = event.time_s
      timeline.append({'t': event.time_s, 'steps': event.steps, 'pages': event.pages_in_use,
                       'live_branches': event.live_branches,
                       'in_flight': event.requests_in_flight, 'waiting': event.requests_waiting})
    elif isinstance(event, TokensEvent):
      first_token.setdefault(event.index, now)
    elif isinstance(event, DoneEvent):
      results[event.index] = event.result
  done = sorted(results)
  latency = [results[i].wall_time_s - arrivals[i] for i in done]
  ttft = [first_token[i] - arrivals[i] for i in done if i in first_token]
  tokens = sum(results[i].num_generated_tokens for i in done)
  duration = max(results[i].wall_time_s for i in done) - min(arrivals)
  return {'completed': len(done), 'generated_tokens': tokens,
          'decode_steps': int(engine.last_stats.get('steps', 0)),
          'forks': sum(results[i].forks for i in done), 'duration_s': duration,
          'throughput_tps': tokens / duration if duration > 0 else None,
          'latency_s': percentiles(latency), 'ttft_s': percentiles(ttft),
          'peak_kv_pages': int(engine.last_stats.get('peak_kv_pages', 0)), 'timeline': timeline}


def _median_of(runs: list[dict[str, Any]], key: str) -> dict[str, Optional[float]]:
  return {q: (statistics.median(v) if (v := [r[key][q] for r in runs if r[key][q] is not None])
              else None) for q in runs[0][key]}


def run_serving(models: BenchModels, modes: Sequence[str], prompt_ids: Sequence[Sequence[int]],
                settings: Any) -> dict[str, dict[str, Any]]:
  """One entry per serving mode (every key of SERVING_FIELDS); a failing mode fails alone.

  `models` says which model each mode decodes; with an APAR fine-tune, `ar_apar_model` (AR on it)
  runs after `ar` and is the baseline of the APAR modes."""
  sizing = dict(max_prompt_len=max(map(len, prompt_ids)), max_new_tokens=settings.max_new_tokens,
                slots=settings.serving_slots, requests=settings.serving_slots,
                num_pages=settings.serving_page_budget, chunk_steps=settings.serving_chunk_steps)
  config = sized_config(models.base.config, **sizing)
  arrivals = poisson_arrivals(settings.serving_requests, settings.serving_rate, settings.seed)
  requests = [Request(token_ids=list(prompt_ids[i % len(prompt_ids)]),
                      max_new_tokens=settings.max_new_tokens, arrival_s=a)
              for i, a in enumerate(arrivals)]
  rows = [(mode, mode, models.for_mode(mode)) for mode in modes]  # (name, engine mode, runtime)
  if models.apar is not None and 'ar' in modes and any(is_apar_mode(m) for m in modes):
    rows.insert(list(modes).index('ar') + 1, (APAR_AR, 'ar', models.apar))
  entries: dict[str, dict[str, Any]] = {}
  engines: dict[str, Any] = {}
  for name, mode, runtime in rows:
    entry = {k: None for k in SERVING_FIELDS}
    entry.update(mode=name, status='ok', capacities=capacities(config),
                 requests=len(requests), page_budget=settings.serving_page_budget)
    entries[name] = entry
    try:
      t0 = time.perf_counter()
      engines[name] = build_engine(runtime.config, mode, params=runtime.params,
                                   tokenizer=runtime.tokenizer, mesh=runtime.mesh, **sizing)
      entry['capacities'] = capacities(engines[name].config)
      engines[name].warmup()
      engines[name].warmup()
      entry['compile_s'] = time.perf_counter() - t0
    except Exception as e:
      _fail(entry, e, 'setup')
  runs: dict[str, list[dict[str, Any]]] = {m: [] for m in engines}
  live = list(engines)
  bar = tqdm(total=settings.serving_repeats * len(live), desc='serving', unit='load',
             disable=not settings.progress, file=sys.stderr)
  for rep in range(settings.serving_repeats):
    k = rep % max(len(live), 1)
    for mode in live[k:] + live[:k]:
      bar.update(1)
      if entries[mode]['status'] != 'ok':
        continue
      try:
        runs[mode].append(one_load(engines[mode], requests))
      except Exception as e:
        _fail(entries[mode], e, f'load {rep}')
  bar.close()
  for mode, mode_runs in runs.items():
    if entries[mode]['status'] != 'ok' or not mode_runs:
      continue
    baseline = models.baseline(mode)
    base = runs.get(baseline) if entries.get(baseline, {}).get('status') == 'ok' else None
    entry = entries[mode]
    first = mode_runs[0]
    entry.update({k: first[k] for k in ('completed', 'generated_tokens', 'decode_steps', 'forks',
                                        'timeline')})
    entry['duration_s'] = spread([r['duration_s'] for r in mode_runs])
    entry['throughput_tps'] = spread([r['throughput_tps'] for r in mode_runs])
    entry['latency_s'] = _median_of(mode_runs, 'latency_s')
    entry['ttft_s'] = _median_of(mode_runs, 'ttft_s')
    entry['peak_kv_pages'] = max(r['peak_kv_pages'] for r in mode_runs)
    if base:
      entry['throughput_vs_ar'] = spread([ratio(r['throughput_tps'], b['throughput_tps'])
                                          for r, b in zip(mode_runs, base)])
      entry['latency_p50_vs_ar'] = ratio(entry['latency_s']['p50'],
                                         _median_of(base, 'latency_s')['p50'])
      entry['latency_p90_vs_ar'] = ratio(entry['latency_s']['p90'],
                                         _median_of(base, 'latency_s')['p90'])
  return entries


def _fail(entry: dict[str, Any], err: BaseException, where: str) -> None:
  entry['status'] = 'failed'
  entry['reason'] = f'{where}: {type(err).__name__}: {err}'
  print(f'[bench] serving {entry["mode"]} failed ({entry["reason"]})', file=sys.stderr)
  if not isinstance(err, ValueError):
    traceback.print_exception(err, file=sys.stderr)
