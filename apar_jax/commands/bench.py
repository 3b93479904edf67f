"""`python -m apar_jax bench`: every mode and peer on the same prompts -> JSON, Markdown, PNGs.

    python -m apar_jax bench --config=configs/smollm2_135m.py --modes=ar,apar,medusa \
        [--prompts_file=data/bench_prompts.jsonl] [--max_new_tokens=48] [--out_dir=runs/bench]

Progress goes to stderr; the Markdown table to stdout. Also runnable before `bench` is wired into
apar_jax/__main__.py: `python -m apar_jax.commands.bench --config=...`.
"""

import os
import sys

import ml_collections

from apar_jax import cli_flags
from apar_jax.cli_errors import check_output
from apar_jax.bench import flags as bench_flags
from apar_jax.bench.settings import BenchSettings

DEFAULT_MAX_NEW_TOKENS = 48
DEFAULT_OUT_DIR = os.path.join('runs', 'bench')


def settings_from_flags(config: ml_collections.ConfigDict) -> BenchSettings:
  """BenchSettings from the bench flags and the shared ones (raises ValueError on bad values)."""
  f = bench_flags
  max_new = cli_flags.MAX_NEW_TOKENS.value
  seed = cli_flags.SEED.value
  return BenchSettings(
      modes=tuple(f.MODES.value), prompts_file=cli_flags.PROMPTS_FILE.value,
      max_prompts=f.MAX_PROMPTS.value,
      max_new_tokens=DEFAULT_MAX_NEW_TOKENS if max_new is None else int(max_new),
      repeats=f.REPEATS.value, apar_slots=f.APAR_SLOTS.value, apar_model=f.APAR_MODEL.value,
      peers=f.PEERS.value,
      peer_threads=f.PEER_THREADS.value,
      serving=f.SERVING.value, serving_modes=tuple(f.SERVING_MODES.value),
      serving_requests=f.SERVING_REQUESTS.value, serving_rate=f.SERVING_RATE.value,
      serving_page_budget=f.SERVING_PAGE_BUDGET.value, serving_slots=f.SERVING_SLOTS.value,
      serving_chunk_steps=f.SERVING_CHUNK_STEPS.value, serving_repeats=f.SERVING_REPEATS.value,
      roofline=f.ROOFLINE.value, timeline=f.TIMELINE.value,
      seed=int(config.seed) if seed is None else int(seed))


def run(config: ml_collections.ConfigDict) -> None:
  if bench_flags.SERVING_URLS.value:  # only the serving load, over HTTP (docs/serving.md)
    from apar_jax.bench import http_serving
    http_serving.run(config)
    return
  from apar_jax.bench.harness import run_bench
  from apar_jax.bench.plots import make_plots
  from apar_jax.bench.report import markdown, write_report
  from apar_jax.runtime import load_runtime
  settings = settings_from_flags(config)
  check_output(cli_flags.OUTPUT.value, cli_flags.OVERWRITE.value)
  out_dir = cli_flags.OUT_DIR.value or DEFAULT_OUT_DIR
  runtime = load_runtime(config)
  args = sys.argv[2:] if sys.argv[1:2] == ['bench'] else sys.argv[1:]
  command = 'python -m apar_jax bench ' + ' '.join(args)
  report = run_bench(runtime, settings, command=command)
  plots = make_plots(report, out_dir)
  report['plots'] = plots
  json_path, md_path = write_report(report, out_dir, cli_flags.OUTPUT.value, plots)
  print(markdown(report))
  print(f'[bench] wrote {json_path}, {md_path} and {len(plots)} plots in {out_dir} '
        f'({report["meta"]["total_wall_s"] / 60:.1f} min)', file=sys.stderr)


if __name__ == '__main__':
  from apar_jax.cli_standalone import run_standalone
  run_standalone(run)
