"""The device check's report as Markdown tables, and its width curve as a plot."""

from typing import Any


def _table(header: list[str], rows: list[list[Any]]) -> str:
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  lines += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
  return '\n'.join(lines) + '\n'


def markdown(report: dict) -> str:
  """Every section of `device_check`'s report as a table, headed by the device and the verdict."""
  sections = report['sections']
  out = [f"# Device check: {report['device']}\n",
         f"jax {report['jax']}, {report['date']}, {'smoke' if report['smoke'] else 'full'} run in "
         f"{report['seconds']} s: **{'pass' if report['ok'] else 'FAIL'}**\n"]
  if 'kernels' in sections:
    out += ['\n## Kernels against the jnp reference\n', _table(
        ['kernel', 'dtype', 'impl', 'max error', 'tolerance', 'kernel ms', 'reference ms', 'ok'],
        [[r['name'], r['dtype'], r['impl'], f"{r['max_error']:.2e}", f"{r['tolerance']:.2e}",
          f"{r['kernel_ms']:.3f}", f"{r['reference_ms']:.3f}", 'yes' if r['ok'] else '**NO**']
         for r in sections['kernels']])]
  if 'width' in sections:
    out += ['\n## Step time of a T-token forward (vs T = 1)\n', _table(
        ['dtype', 'batch', 'T', 'step ms', 'vs T = 1'],
        [[p['dtype'], p['batch'], p['width'], f"{p['step_ms']:.2f}", f"{p['vs_width_1']:.2f}x"]
         for p in sections['width']])]
  if 'identity' in sections:
    out += ['\n## Lossless modes, greedy, token-identical to their baseline\n', _table(
        ['mode', 'baseline', 'identical', 'refused forks', 'forks', 'mean accepted', 'ok'],
        [[r['mode'], r['baseline'], f"{r['identical']}/{r['prompts']}", r['refused'], r['forks'],
          f"{r['mean_accepted_tokens']:.2f}", 'yes' if r['ok'] else '**NO**']
         for r in sections['identity']])]
  if sections.get('speed'):
    out += ['\n## Generation speed (greedy; prefill included, compile excluded; untrained '
            'drafters)\n', _table(
        ['mode', 'weights', 'requests', 'tokens', 'decode steps', 'tokens/s'],
        [[r['mode'], r['weights'], r['requests'], r['tokens'], r['decode_steps'],
          f"{r['tokens_per_s']:.1f}"] for r in sections['speed']])]
  if report.get('skipped'):
    out.append(f"\nNot measured within the time budget: {', '.join(report['skipped'])}.\n")
  return ''.join(out)


def plot_width_curve(report: dict, path: str) -> None:
  """Step time against T (relative to T = 1), one line per dtype and batch, log2 x axis."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  points = report['sections']['width']
  fig, ax = plt.subplots(figsize=(6, 4))
  for key in sorted({(p['dtype'], p['batch']) for p in points}):
    line = sorted((p['width'], p['vs_width_1']) for p in points if (p['dtype'], p['batch']) == key)
    ax.plot(*zip(*line), marker='o', label=f'{key[0]}, batch {key[1]}')
  ax.set_xscale('log', base=2)
  widths = sorted({p['width'] for p in points})
  ax.set_xticks(widths, [str(w) for w in widths])
  ax.set_xlabel('query tokens per row (T)')
  ax.set_ylabel('step time / step time at T = 1')
  ax.set_title(f"Verify-width curve: {report['device']}", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
