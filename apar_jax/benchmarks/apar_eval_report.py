"""The APAR evaluation's figures (`apar_eval.py`) against the issue's targets, as a markdown table."""

import statistics

TARGETS = dict(fork_rate=0.80, step_ratio=0.50, loss_ratio=1.05)


def summarise(records: list[dict], base_nll: float, apar_nll: float) -> dict:
  steps = [r['decode_steps'] for r in records]
  tokens = [r['num_generated_tokens'] for r in records]
  per_request = [s / max(t, 1) for s, t in zip(steps, tokens)]
  return dict(
      requests=len(records),
      fork_rate=sum(r['forks'] > 0 for r in records) / len(records),
      mean_forks=statistics.mean(r['forks'] for r in records),
      refused_forks=sum(r['refused_forks'] for r in records),
      tokens=sum(tokens), decode_steps=sum(steps),
      step_ratio=sum(steps) / sum(tokens),  # AR: exactly one token per step (ratio 1.0)
      median_request_step_ratio=statistics.median(per_request),
      base_plain_nll=base_nll, apar_plain_nll=apar_nll, loss_ratio=apar_nll / base_nll)


def report(summary: dict) -> str:
  s, t = summary, TARGETS
  ok = lambda good: 'met' if good else 'NOT met'  # noqa: E731
  rows = [
      ('requests forking', f"{s['fork_rate']:.0%} of {s['requests']} (mean {s['mean_forks']:.1f} "
       f"forks, {s['refused_forks']} refused)", f">= {t['fork_rate']:.0%}",
       ok(s['fork_rate'] >= t['fork_rate'])),
      ('decode steps / token vs AR', f"{s['step_ratio']:.3f} ({s['decode_steps']} steps, "
       f"{s['tokens']} tokens; median request {s['median_request_step_ratio']:.3f})",
       f"<= {t['step_ratio']:.2f}", ok(s['step_ratio'] <= t['step_ratio'])),
      ('held-out plain NLL vs base', f"{s['loss_ratio']:.3f} ({s['apar_plain_nll']:.4f} vs "
       f"{s['base_plain_nll']:.4f} nats/token)", f"<= {t['loss_ratio']:.2f}",
       ok(s['loss_ratio'] <= t['loss_ratio'])),
  ]
  lines = ['| measure | APAR model | target | |', '|---|---|---|---|']
  lines += [f'| {a} | {b} | {c} | {d} |' for a, b, c, d in rows]
  return '\n'.join(lines)
