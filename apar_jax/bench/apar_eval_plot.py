"""The APAR evaluation as a picture: answer defects side by side, and decode steps per request."""

from typing import Any, Sequence

from apar_jax.bench.apar_eval_report import TARGETS, AnswerRow

DEFECT_BARS = (('empty_details', 'empty / < 3-word\nitem details'),
               ('duplicate_titles', 'duplicate\nitem titles'), ('loops', 'answers with\na 4-gram loop'),
               ('hit_budget', 'answers that hit\nthe budget'))


def plot_eval(summary: dict[str, Any], apar_rows: Sequence[AnswerRow], out_path: str) -> str:
  """Left: the defect counts of both models on the list requests; right: each list request's
  decode steps per token in APAR mode (AR = 1), sorted, with the target. Returns `out_path`."""
  import matplotlib
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt
  import numpy as np
  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw=dict(width_ratios=(1.3, 1)))
  x = np.arange(len(DEFECT_BARS))
  for offset, side, label in ((-0.2, 'apar', 'APAR model, APAR mode'),
                              (0.2, 'base', 'base model, AR')):
    left.bar(x + offset, [summary[side][k] for k, _ in DEFECT_BARS], 0.4, label=label)
  left.set_xticks(x, [name for _, name in DEFECT_BARS], fontsize=8)
  left.set_ylabel(f"count over {summary['apar']['list_requests']} list requests")
  left.legend(fontsize=8)
  left.grid(axis='y', alpha=0.3)
  ratios = sorted(r.decode_steps / max(r.tokens, 1) for r in apar_rows if r.kind == 'list')
  right.plot(np.arange(1, len(ratios) + 1), ratios, 'o', ms=3, label='APAR mode, per request')
  right.axhline(1.0, color='grey', lw=1, label='AR (one token per step)')
  right.axhline(TARGETS['steps_per_token'], color='tab:red', lw=1, ls='--', label='target')
  right.set_ylim(0, 1.1)
  right.set_xlabel('list request (sorted)')
  right.set_ylabel('decode steps per generated token')
  right.legend(fontsize=8)
  right.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(out_path, dpi=110)
  plt.close(fig)
  return out_path
