"""From raw samples to the per-mode figures of the report.

Timings are computed per repetition over all prompts (tokens / seconds, as a user would see them on
this prompt set), then summarised as median, min and max over repetitions. Speed-up over AR is the
ratio of the two tokens/s figures *of the same repetition* (measured minutes apart, never hours), so
AR's own speed-up is 1.0 only because it is divided by itself. Counts (tokens, steps, pages) are
those of the first repetition: greedy decoding repeats them exactly.
"""

from typing import Any, Optional, Sequence

from apar_jax.bench.contender import Sample
from apar_jax.bench.latency import ContenderRun
from apar_jax.bench.stats import ratio, spread

MODE_FIELDS = (
    'name', 'kind', 'status', 'reason', 'compile_s', 'describe', 'prompts', 'generated_tokens',
    'decode_steps', 'steps_per_token', 'mean_accepted_tokens', 'tokens_per_s', 'speedup_vs_ar',
    'ttft_ms', 'step_ms', 'roofline_step_ms', 'step_vs_roofline', 'peak_kv_pages',
    'attended_kv_tokens_per_step', 'forks', 'max_live_branches', 'same_tokens_as_ar', 'by_kind',
    'by_category', 'per_prompt')
"""Every mode entry of the report has all of these keys (None where a figure does not apply)."""


def _rep_tps(rep: Sequence[Sample], idx: Sequence[int]) -> Optional[float]:
  tokens = sum(rep[i].num_tokens for i in idx)
  wall = sum(rep[i].wall_s for i in idx)
  return tokens / wall if wall > 0 else None


def _rep_step_ms(rep: Sequence[Sample]) -> Optional[float]:
  """Decode-only time per step: (answer time - time to first token) / (steps - 1), pooled."""
  steps = sum(s.decode_steps - 1 for s in rep)
  if steps <= 0 or any(s.ttft_s is None for s in rep):
    return None
  return 1e3 * max(sum(s.wall_s - s.ttft_s for s in rep), 0.0) / steps


def _empty(run: ContenderRun) -> dict[str, Any]:
  entry = {k: None for k in MODE_FIELDS}
  entry.update(name=run.name, kind=run.kind, status=run.status, reason=run.reason,
               compile_s=run.compile_s, describe=run.describe)
  return entry


def _group(run: ContenderRun, ar: Optional[ContenderRun], idx: Sequence[int],
           ar_ok: bool) -> dict[str, Any]:
  """The figures of the prompts `idx` (one prompt kind or category)."""
  first = run.samples[0]
  tokens = sum(first[i].num_tokens for i in idx)
  steps = sum(first[i].decode_steps for i in idx)
  tps = [_rep_tps(rep, idx) for rep in run.samples]
  speed = [ratio(t, _rep_tps(a, idx)) for t, a in zip(tps, ar.samples)] if ar_ok else []
  return {'prompts': len(idx), 'generated_tokens': tokens, 'decode_steps': steps,
          'steps_per_token': ratio(steps, tokens),
          'mean_accepted_tokens': ratio(sum(first[i].mean_accepted_tokens * first[i].decode_steps
                                            for i in idx), steps),
          'forks': sum(first[i].forks for i in idx), 'tokens_per_s': spread(tps),
          'speedup_vs_ar': spread(speed)}


def summarize(run: ContenderRun, ar: Optional[ContenderRun], kinds: Sequence[str],
              roofline_step_s: Optional[float],
              categories: Sequence[str] = ()) -> dict[str, Any]:
  """The report entry of one contender (every key of MODE_FIELDS present); `categories` (one per
  prompt, '' = none) adds figures per category."""
  entry = _empty(run)
  if run.status != 'ok' or not run.samples or not run.samples[0]:
    return entry
  first = run.samples[0]
  n = len(first)
  everything = list(range(n))
  ar_ok = ar is not None and ar.status == 'ok' and len(ar.samples) == len(run.samples)
  tokens = sum(s.num_tokens for s in first)
  steps = sum(s.decode_steps for s in first)
  tps = [_rep_tps(rep, everything) for rep in run.samples]
  speedup = ([ratio(t, _rep_tps(a, everything)) for t, a in zip(tps, ar.samples)]
             if ar_ok else [])
  step_ms = spread([_rep_step_ms(rep) for rep in run.samples])
  pages = [s.peak_kv_pages for s in first if s.peak_kv_pages is not None]
  attended = [s.attended_kv_tokens for s in first if s.attended_kv_tokens is not None]
  roof_ms = None if roofline_step_s is None else 1e3 * roofline_step_s
  entry.update(
      prompts=n, generated_tokens=tokens, decode_steps=steps,
      steps_per_token=ratio(steps, tokens),
      mean_accepted_tokens=ratio(sum(s.mean_accepted_tokens * s.decode_steps for s in first),
                                 steps),
      tokens_per_s=spread(tps), speedup_vs_ar=spread(speedup),
      ttft_ms=spread([1e3 * sum(s.ttft_s for s in rep) / len(rep) for rep in run.samples]),
      step_ms=step_ms, roofline_step_ms=roof_ms,
      step_vs_roofline=ratio(step_ms['median'], roof_ms) if step_ms else None,
      peak_kv_pages=max(pages) if pages else None,
      attended_kv_tokens_per_step=ratio(sum(attended), steps) if attended else None,
      forks=sum(s.forks for s in first), max_live_branches=max(s.max_live_branches for s in first),
      same_tokens_as_ar=(sum(s.token_ids == a.token_ids for s, a in zip(first, ar.samples[0])) / n
                         if ar_ok else None))
  entry['by_kind'] = {kind: _group(run, ar, [i for i in everything if kinds[i] == kind], ar_ok)
                      for kind in dict.fromkeys(kinds)}
  if any(categories):
    entry['by_category'] = {
        c: _group(run, ar, [i for i in everything if categories[i] == c], ar_ok)
        for c in dict.fromkeys(categories) if c}
  entry['per_prompt'] = [
      {'index': i, 'kind': kinds[i], 'category': categories[i] if categories else '',
       'generated_tokens': s.num_tokens, 'mean_accepted_tokens': s.mean_accepted_tokens,
       'decode_steps': s.decode_steps, 'forks': s.forks, 'max_live_branches': s.max_live_branches,
       'peak_kv_pages': s.peak_kv_pages, 'attended_kv_tokens': s.attended_kv_tokens,
       'wall_s': spread([rep[i].wall_s for rep in run.samples]),
       'ttft_s': spread([rep[i].ttft_s for rep in run.samples]),
       'same_tokens_as_ar': (s.token_ids == ar.samples[0][i].token_ids) if ar_ok else None,
       'token_ids': s.token_ids}
      for i, s in enumerate(first)]
  return entry
