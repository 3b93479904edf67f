"""The APAR evaluation's figures: per-answer quality signals, both models side by side, the targets.

    row = answer_row(request, record, stop_ids)       # one engine record -> signals of one answer
    summary = summarise(apar_rows, base_rows, nll)    # totals per side and the target checks
    print(report(summary))                            # a markdown table

Signals per answer (`apar_data.answer_quality`): list items, duplicate item titles, items whose detail
is empty or under 3 words (the last item excepted when the budget cut it), repeated word 4-grams and
whether they make a loop, whether the list locks onto one title
(`answer_quality.LOCK_REPEATS` times or more), whether a branch hit the token budget, length;
decode steps and forks.
"""

import dataclasses
import statistics
from typing import Any, Iterable, Optional, Sequence

from apar_jax.apar_data.answer_quality import LOCK_REPEATS, answer_quality

TARGETS = dict(list_fork_rate=0.90, plain_no_fork_rate=0.90, steps_per_token=0.50,
               answer_nll_ratio=1.10, plain_nll_ratio=1.05)
# Counted over list requests; the APAR model may have no more of each than the base model.
DEFECTS = ('empty_details', 'duplicate_titles', 'loops')


@dataclasses.dataclass(frozen=True)
class AnswerRow:
  """One answer's signals (a request of `kind`, answered by one model in one mode)."""
  id: str
  kind: str  # the request's: 'list' | 'plain'
  text: str
  tokens: int  # generated tokens (every branch; control tokens excluded)
  decode_steps: int
  forks: int
  finished: bool  # the root ended with a stop token
  hit_budget: bool  # some branch ran out of tokens
  items: int
  duplicate_titles: int
  empty_details: int
  repeated_4grams: int
  has_loop: bool
  words: int
  locked: bool = False  # one title comes LOCK_REPEATS times or more


def hit_budget(record: dict[str, Any], stop_ids: Iterable[int]) -> bool:
  """Whether some branch of an engine record ended without a stop token (cut by the budget)."""
  stops = set(stop_ids)
  return any(not b['tokens'] or b['tokens'][-1] not in stops for b in record['branches'])


def answer_row(request: Any, record: dict[str, Any], stop_ids: Sequence[int]) -> AnswerRow:
  """The signals of one engine record (`Result.to_record()`) answering `request`."""
  ids = record['token_ids']
  finished = bool(ids) and ids[-1] in set(stop_ids)
  q = answer_quality(record['text'], finished)
  return AnswerRow(request.id, request.kind, record['text'], int(record['num_generated_tokens']),
                   int(record['decode_steps']), int(record['forks']), finished,
                   hit_budget(record, stop_ids), q.num_items, q.duplicate_titles, q.empty_details,
                   q.repeated_4grams, q.has_loop, len(record['text'].split()), q.locked)


def _side(rows: Sequence[AnswerRow]) -> dict[str, Any]:
  lists = [r for r in rows if r.kind == 'list']
  plain = [r for r in rows if r.kind == 'plain']
  tokens = sum(r.tokens for r in lists)
  forking = [r.forks for r in lists if r.forks]
  out: dict[str, Any] = dict(
      list_requests=len(lists), plain_requests=len(plain),
      list_fork_rate=sum(r.forks > 0 for r in lists) / max(len(lists), 1),
      plain_no_fork_rate=sum(r.forks == 0 for r in plain) / max(len(plain), 1),
      mean_forks=statistics.mean(r.forks for r in lists) if lists else 0.0,
      tokens=tokens, decode_steps=sum(r.decode_steps for r in lists),
      steps_per_token=sum(r.decode_steps for r in lists) / max(tokens, 1),
      median_request_steps_per_token=(statistics.median(r.decode_steps / max(r.tokens, 1)
                                                        for r in lists) if lists else 0.0),
      items=sum(r.items for r in lists),
      answers_with_items=sum(r.items >= 2 for r in lists),
      empty_details=sum(r.empty_details for r in lists),
      duplicate_titles=sum(r.duplicate_titles for r in lists),
      loops=sum(r.has_loop for r in lists),
      locked_lists=sum(r.locked for r in lists),
      median_forks=statistics.median(forking) if forking else 0.0,
      repeated_4grams=sum(r.repeated_4grams for r in lists),
      hit_budget=sum(r.hit_budget for r in lists),
      mean_tokens=tokens / max(len(lists), 1),
      mean_words=statistics.mean(r.words for r in lists) if lists else 0.0,
      plain_loops=sum(r.has_loop for r in plain),
      plain_hit_budget=sum(r.hit_budget for r in plain))
  # the defects as rates too, so a longer answer is not worse only for being longer
  out['empty_detail_share'] = out['empty_details'] / max(out['items'], 1)
  out['duplicate_titles_per_1k'] = 1000 * out['duplicate_titles'] / max(tokens, 1)
  return out


def nll_without_loops(rows: Sequence[AnswerRow], sums: Sequence[float],
                      counts: Sequence[float]) -> tuple[Optional[float], int]:
  """The NLL per token over the answers of `rows` (with their NLL sums and target counts) that
  neither loop nor hit the budget, and how many there are (None when none)."""
  keep = [k for k, r in enumerate(rows) if not r.has_loop and not r.hit_budget]
  total = float(sum(counts[k] for k in keep))
  return (float(sum(sums[k] for k in keep)) / total if total else None), len(keep)


def summarise(apar_rows: Sequence[AnswerRow], base_rows: Sequence[AnswerRow], *,
              apar_answer_nll: float, base_answer_nll: float,
              plain_nll: Optional[tuple[float, float]],
              clean_nll: Optional[dict[str, tuple[Optional[float], int]]] = None
              ) -> dict[str, Any]:
  """Both sides' totals; `*_answer_nll`: the base model's NLL per token of each side's list answers;
  `plain_nll`: (base, APAR params) NLL per token of the base model's finished plain answers;
  `clean_nll`: per side ('apar', 'base'), `nll_without_loops` of its list answers (context: a loop
  is cheap to predict, so the target's ratio rewards it)."""
  apar, base = _side(apar_rows), _side(base_rows)
  apar['answer_nll'], base['answer_nll'] = apar_answer_nll, base_answer_nll
  if clean_nll is not None:
    apar['clean_answer_nll'], apar['clean_answers'] = clean_nll['apar']
    base['clean_answer_nll'], base['clean_answers'] = clean_nll['base']
  checks = dict(
      list_fork_rate=apar['list_fork_rate'] >= TARGETS['list_fork_rate'],
      plain_no_fork_rate=(apar['plain_no_fork_rate'] >= TARGETS['plain_no_fork_rate']
                          if apar['plain_requests'] else None),
      steps_per_token=apar['steps_per_token'] <= TARGETS['steps_per_token'],
      answer_nll_ratio=apar_answer_nll / base_answer_nll <= TARGETS['answer_nll_ratio'])
  for name in DEFECTS:
    checks[name] = apar[name] <= base[name]
  summary: dict[str, Any] = dict(apar=apar, base=base,
                                 answer_nll_ratio=apar_answer_nll / base_answer_nll)
  if plain_nll is not None:
    summary['plain_nll'] = dict(base=plain_nll[0], apar=plain_nll[1],
                                ratio=plain_nll[1] / plain_nll[0])
    checks['plain_nll_ratio'] = summary['plain_nll']['ratio'] <= TARGETS['plain_nll_ratio']
  summary['checks'] = checks
  return summary


def _verdict(ok: Optional[bool]) -> str:
  return '' if ok is None else ('met' if ok else 'NOT met')


def report(summary: dict[str, Any]) -> str:
  """The side-by-side markdown table (list-request figures unless the row says plain)."""
  a, b, c, t = summary['apar'], summary['base'], summary['checks'], TARGETS
  n = a['list_requests']
  rows = [
      ('list requests forking', f"{a['list_fork_rate']:.0%} of {n} (mean {a['mean_forks']:.1f} "
       f"forks; median {a['median_forks']:g} per forking answer)",
       '0 (AR)', f">= {t['list_fork_rate']:.0%}", _verdict(c['list_fork_rate'])),
      ('plain requests without a fork', f"{a['plain_no_fork_rate']:.0%} of {a['plain_requests']}",
       '-', f">= {t['plain_no_fork_rate']:.0%}", _verdict(c['plain_no_fork_rate'])),
      ('decode steps / token', f"{a['steps_per_token']:.3f} (median request "
       f"{a['median_request_steps_per_token']:.3f})", f"{b['steps_per_token']:.3f}",
       f"<= {t['steps_per_token']:.2f}", _verdict(c['steps_per_token'])),
      ('list items (answers with >= 2)', f"{a['items']} ({a['answers_with_items']})",
       f"{b['items']} ({b['answers_with_items']})", '', ''),
      ('items with an empty / < 3-word detail (share of items)',
       *(f"{x['empty_details']} ({x['empty_detail_share']:.1%})" for x in (a, b)),
       '<= base', _verdict(c['empty_details'])),
      ('duplicate item titles (per 1,000 tokens)',
       *(f"{x['duplicate_titles']} ({x['duplicate_titles_per_1k']:.1f})" for x in (a, b)),
       '<= base', _verdict(c['duplicate_titles'])),
      ('answers with a 4-gram loop', str(a['loops']), str(b['loops']), '<= base',
       _verdict(c['loops'])),
      (f'lists that repeat one title {LOCK_REPEATS}+ times', str(a['locked_lists']),
       str(b['locked_lists']), '', ''),
      ('repeated word 4-grams', str(a['repeated_4grams']), str(b['repeated_4grams']), '', ''),
      ('answers that hit the budget', str(a['hit_budget']), str(b['hit_budget']), '', ''),
      ('mean length (tokens / words)', f"{a['mean_tokens']:.0f} / {a['mean_words']:.0f}",
       f"{b['mean_tokens']:.0f} / {b['mean_words']:.0f}", '', ''),
      ("base model's NLL of the answers", f"{a['answer_nll']:.4f} "
       f"({summary['answer_nll_ratio']:.3f}x)", f"{b['answer_nll']:.4f}",
       f"<= {t['answer_nll_ratio']:.2f}x", _verdict(c['answer_nll_ratio'])),
  ]
  if 'clean_answers' in a:
    rows.append(("... of the answers without a loop or budget cut (answers)",
                 *(f"{x['clean_answer_nll']:.4f} ({x['clean_answers']})"
                   if x['clean_answer_nll'] is not None else '- (0)' for x in (a, b)), '', ''))
  if 'plain_nll' in summary:
    p = summary['plain_nll']
    rows.append(('held-out plain-answer NLL', f"{p['apar']:.4f} ({p['ratio']:.3f}x)",
                 f"{p['base']:.4f}", f"<= {t['plain_nll_ratio']:.2f}x",
                 _verdict(c['plain_nll_ratio'])))
  lines = ['| measure | APAR model, APAR mode | base model, AR | target | |',
           '|---|---|---|---|---|']
  lines += ['| ' + ' | '.join(r) + ' |' for r in rows]
  return '\n'.join(lines)
