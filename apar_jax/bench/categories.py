"""Figures per task category: tokens per decode step of engine results (`Result`s or `Sample`s,
anything with `decode_steps` and `mean_accepted_tokens`), by category and mode."""

from typing import Any, Sequence


def tokens_per_step(results: Sequence[Any]) -> float:
  """Tokens per decode step over these results (each weighted by its steps)."""
  steps = sum(r.decode_steps for r in results)
  return sum(r.mean_accepted_tokens * r.decode_steps for r in results) / max(steps, 1)


def category_table(results: dict[str, Sequence[Any]], categories: Sequence[str]) -> str:
  """Markdown: tokens per step of every mode (columns) in every category (rows), then all."""
  modes = list(results)
  lines = ['| category | prompts | ' + ' | '.join(modes) + ' |',
           '| --- | ---: | ' + ' | '.join('---:' for _ in modes) + ' |']
  for c in [c for c in dict.fromkeys(categories) if c] + ['all']:
    idx = [i for i, k in enumerate(categories) if c in ('all', k)]
    cells = [f'{tokens_per_step([results[m][i] for i in idx]):.2f}' for m in modes]
    lines.append(f'| {c} | {len(idx)} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)
