"""The report's PNGs (matplotlib, Agg): speed-up per mode, steps vs generated tokens, KV pages over
time under load, and the APAR branch timeline of one request."""

import os
from typing import Any, Optional

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def _save(fig: Any, path: str) -> str:
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def plot_speedup(modes: list[dict[str, Any]], path: str) -> Optional[str]:
  """Bars: median speed-up over AR per mode, whiskers min-max over repetitions."""
  ok = [m for m in modes if m['status'] == 'ok' and m['speedup_vs_ar']]
  if not ok:
    return None
  fig, ax = plt.subplots(figsize=(1.6 + 1.2 * len(ok), 3.6))
  med = [m['speedup_vs_ar']['median'] for m in ok]
  err = [[v - m['speedup_vs_ar']['min'] for v, m in zip(med, ok)],
         [m['speedup_vs_ar']['max'] - v for v, m in zip(med, ok)]]
  colors = ['tab:blue' if m['kind'] == 'engine' else 'tab:gray' for m in ok]
  ax.bar([m['name'] for m in ok], med, yerr=err, capsize=4, color=colors)
  ax.axhline(1.0, color='k', lw=0.8, ls='--')
  for i, m in enumerate(ok):
    ax.text(i, m['speedup_vs_ar']['max'], f'{med[i]:.2f}x', ha='center', va='bottom', fontsize=8)
  ax.set_ylim(0, 1.15 * max(1.0, max(m['speedup_vs_ar']['max'] for m in ok)))
  ax.set_ylabel('tokens/s relative to AR')
  ax.set_title('Speed-up over AR (batch 1; grey = peers)')
  ax.tick_params(axis='x', rotation=20)
  return _save(fig, path)


def plot_steps(modes: list[dict[str, Any]], path: str) -> Optional[str]:
  """Per answer: decode steps against generated tokens (below the diagonal = fewer steps)."""
  ok = [m for m in modes if m['status'] == 'ok' and m['per_prompt']]
  if not ok:
    return None
  fig, ax = plt.subplots(figsize=(5, 4.2))
  top = 1
  markers = 'os^Dvx+*'
  for i, m in enumerate(ok):
    xs = [p['generated_tokens'] for p in m['per_prompt']]
    ys = [p['decode_steps'] for p in m['per_prompt']]
    top = max(top, *xs, *ys)
    ax.scatter(xs, ys, label=m['name'], marker=markers[i % len(markers)], alpha=0.7, s=24)
  ax.plot([0, top], [0, top], color='k', lw=0.8, ls='--', label='1 step per token')
  ax.set_xlabel('generated tokens')
  ax.set_ylabel('decode steps (forward passes)')
  ax.set_title('Steps vs generated tokens, per answer')
  ax.legend(fontsize=8)
  return _save(fig, path)


def plot_kv_pages(serving: dict[str, dict[str, Any]], budget: int, path: str) -> Optional[str]:
  """KV pages in use after every chunk, per serving mode, against the page budget."""
  ok = {k: s for k, s in serving.items() if s['status'] == 'ok' and s['timeline']}
  if not ok:
    return None
  fig, ax = plt.subplots(figsize=(6, 3.6))
  for mode, s in ok.items():
    ax.step([p['t'] for p in s['timeline']], [p['pages'] for p in s['timeline']], where='post',
            label=mode)
  ax.axhline(budget, color='k', lw=0.8, ls='--', label='page budget')
  ax.set_ylim(0, 1.3 * budget)
  ax.set_xlabel('time since the load started (s)')
  ax.set_ylabel('KV pages in use (after each chunk)')
  ax.set_title('KV pages over time under a Poisson load')
  ax.legend(fontsize=8, ncol=len(ok) + 1, loc='upper center')
  return _save(fig, path)


def plot_timeline(timeline: dict[str, Any], path: str) -> Optional[str]:
  """One row per branch: a dot at every step it emitted a token; x = a `[Fork]` it emitted."""
  if not timeline or timeline.get('status') != 'ok' or not timeline['branches']:
    return None
  branches = timeline['branches']
  fig, ax = plt.subplots(figsize=(6.5, 1.4 + 0.3 * len(branches)))
  for row, b in enumerate(branches):
    ax.scatter(b['steps'], [row] * len(b['steps']), s=10, color='tab:blue')
    ax.scatter(b['fork_steps'], [row] * len(b['fork_steps']), s=40, marker='x', color='tab:red')
  ax.set_yticks(range(len(branches)))
  ax.set_yticklabels(['root' if b['parent'] < 0 else f'branch {b["branch"]}' for b in branches],
                     fontsize=7)
  ax.invert_yaxis()
  ax.set_xlabel('decode step')
  ax.set_title(f'APAR branch timeline: {timeline["generated_tokens"]} tokens in '
               f'{timeline["decode_steps"]} steps\n{timeline["source"]}', fontsize=9)
  return _save(fig, path)


def make_plots(report: dict[str, Any], out_dir: str) -> dict[str, str]:
  """Draws every plot the report has data for; {title: file name inside out_dir}."""
  os.makedirs(out_dir, exist_ok=True)
  budget = report['settings']['serving_page_budget']
  jobs = {'Speed-up over AR': ('bench_speedup.png', lambda p: plot_speedup(report['modes'], p)),
          'Steps vs generated tokens': ('bench_steps.png',
                                        lambda p: plot_steps(report['modes'], p)),
          'KV pages under load': ('bench_kv_pages.png',
                                  lambda p: plot_kv_pages(report['serving'], budget, p)),
          'APAR branch timeline': ('bench_branch_timeline.png',
                                   lambda p: plot_timeline(report.get('timeline'), p))}
  made = {}
  for title, (name, draw) in jobs.items():
    if draw(os.path.join(out_dir, name)):
      made[title] = name
  return made
