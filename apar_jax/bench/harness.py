"""`run_bench`: one run that measures every mode and peer on the same prompts and weights.

Order: prompts -> memory bandwidth -> batch-1 latency (engine modes + transformers peers,
interleaved repetitions) -> serving load -> APAR branch timeline -> memory bandwidth again (the
roofline uses the best). Each part that fails is reported with its reason; the rest still runs.
"""

import dataclasses
import os
import platform
import subprocess
import sys
import time
from typing import Any, Optional

import jax

from apar_jax.bench.engines import EngineContender
from apar_jax.bench.latency import ContenderRun, run_latency
from apar_jax.bench.metrics import summarize
from apar_jax.bench.models import APAR_AR, BenchModels, load_models
from apar_jax.bench.prompts import load_prompts
from apar_jax.bench.roofline import bandwidth_sample, roofline
from apar_jax.bench.settings import PEER_NAMES, BenchSettings
from apar_jax.cli_flags import REPO_ROOT
from apar_jax.modes import is_apar_mode
from apar_jax.tokenization import encode_user_prompt


def _git_commit() -> Optional[str]:
  try:
    out = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=REPO_ROOT, check=True,
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return None


def _meta(runtime: Any, command: Optional[str]) -> dict[str, Any]:
  return {'config': runtime.config.name, 'command': command, 'git_commit': _git_commit(),
          'date_utc': time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime()),
          'jax': jax.__version__, 'backend': jax.default_backend(),
          'devices': jax.device_count(), 'cpu_count': os.cpu_count(),
          'machine': platform.machine(), 'python': platform.python_version(),
          'load_average_start': list(os.getloadavg()),
          'model_dtype': str(runtime.config.model.get('dtype', 'float32'))}


def _skipped(name: str, reason: str) -> ContenderRun:
  return ContenderRun(name, 'peer', status='skipped', reason=reason)


def run_bench(runtime: Any, settings: BenchSettings,
              command: Optional[str] = None) -> dict[str, Any]:
  """Runs everything `settings` asks for; returns the JSON-serialisable report."""
  t_start = time.perf_counter()
  cfg, tok = runtime.config, runtime.tokenizer
  prompts = load_prompts(settings.prompts_file, settings.max_prompts)
  ids = [encode_user_prompt(tok, p.prompt, cfg.tokenizer) for p in prompts]
  kinds = [p.kind for p in prompts]
  categories = [p.category for p in prompts]
  report: dict[str, Any] = {
      'meta': _meta(runtime, command), 'settings': dataclasses.asdict(settings),
      'prompts': [{'prompt': p.prompt, 'kind': p.kind, 'category': p.category,
                   'prompt_tokens': len(i)}
                  for p, i in zip(prompts, ids)]}
  models = load_models(runtime, settings)
  report['models'] = models.describe()
  bandwidth = [bandwidth_sample(settings.bandwidth_bytes)] if settings.roofline else []

  # Batch-1 latency: engine modes (AR on the APAR fine-tune right after AR), then peers, all
  # interleaved.
  max_len = max(map(len, ids))
  sizing = dict(max_prompt_len=max_len, max_new_tokens=settings.max_new_tokens, requests=1,
                chunk_steps=settings.chunk_steps)
  contenders: list[Any] = []
  for mode in settings.engine_modes():
    contenders.append(EngineContender(models.for_mode(mode), mode,
                                      slots=settings.apar_slots if is_apar_mode(mode) else 1,
                                      **sizing))
    if mode == 'ar' and models.apar is not None:
      contenders.append(EngineContender(models.apar, 'ar', name=APAR_AR, slots=1, **sizing))
  skipped: dict[str, str] = {}
  if settings.peers:
    from apar_jax.bench.peers import hf_peers
    peers, skipped = hf_peers(runtime, settings.prompt_lookup_tokens, settings.peer_threads)
    contenders += peers
    del peers
  else:
    skipped = {name: 'peers turned off (--nopeers)' for name in PEER_NAMES}
  runs = run_latency(contenders, ids, settings.max_new_tokens, settings.repeats, settings.progress)
  runs += [_skipped(name, reason) for name, reason in skipped.items()]
  del contenders  # the transformers copy of the weights and the batch-1 KV pools
  by_name = {r.name: r for r in runs}
  baselines = [by_name.get(models.baseline(r.name)) for r in runs]
  modes = [summarize(r, base, kinds, None, categories) for r, base in zip(runs, baselines)]

  report['serving'] = {}
  if settings.serving:
    from apar_jax.bench.serving import run_serving
    report['serving'] = run_serving(models, settings.serving_modes, ids, settings)

  report['timeline'] = None
  if settings.timeline:
    report['timeline'] = _timeline(models, modes, ids, settings)
  report['roofline'] = None
  if settings.roofline:
    bandwidth.append(bandwidth_sample(settings.bandwidth_bytes))
    report['roofline'] = roofline(runtime.params, bandwidth)
  roof_s = report['roofline']['step_ms'] / 1e3 if report['roofline'] else None
  report['modes'] = [summarize(r, base, kinds, roof_s, categories)
                     for r, base in zip(runs, baselines)]
  report['meta']['load_average_end'] = list(os.getloadavg())
  report['meta']['total_wall_s'] = time.perf_counter() - t_start
  return report


def _timeline(models: BenchModels, modes: list[dict[str, Any]], ids: list[list[int]],
              settings: BenchSettings) -> dict[str, Any]:
  """The branch timeline of the first APAR mode that ran (forky tiny model if it never forked)."""
  from apar_jax.bench.timeline import apar_timeline
  apar = next((m for m in modes if is_apar_mode(m['name']) and m['status'] == 'ok'), None)
  mode = apar['name'] if apar else 'apar'
  forks = [p['forks'] for p in apar['per_prompt']] if apar else None
  try:
    timeline = apar_timeline(models.for_mode(mode), mode, ids, forks, settings.max_new_tokens,
                             settings.apar_slots)
    timeline['status'] = 'ok'
    return timeline
  except Exception as e:
    print(f'[bench] branch timeline failed: {type(e).__name__}: {e}', file=sys.stderr)
    return {'status': 'failed', 'reason': f'{type(e).__name__}: {e}', 'mode': mode}
