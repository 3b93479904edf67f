"""Which distilled answers are worth training on, and why the others are dropped.

    verdict = judge(text, finished=True, kind='list')
    verdict.kept, verdict.reason, verdict.tree_kind

Rules, first failure wins (the reason names it):
- 'budget': the answer hit the token budget (it did not finish);
- a content filter ('code', 'maths', 'link', 'table', 'html', 'non_latin', 'control_token_text');
- '4gram_loop': a word 4-gram repeats (`answer_quality.has_loop`);
- list and paragraph requests: 'no_structure' (the extractor finds no list or paragraph tree),
  'duplicate_titles', 'empty_item' (a detail under 3 words);
- plain requests: 'structured_plain' (a list or a tree in an answer that should have none: training
  on it without forks would teach the model to write lists without forking).

`hopeless(partial text)` names a reason that more tokens cannot undo (a loop already there for good,
`Quality.loops_for_good`), so distillation can stop decoding such an answer early.
"""

import dataclasses

from apar_jax.apar_data.answer_quality import answer_quality
from apar_jax.apar_data.content_filters import rejection_reason
from apar_jax.apar_data.structure import extract_tree

STRUCTURED_KINDS = ('list', 'paragraphs')
REQUEST_KINDS = STRUCTURED_KINDS + ('plain',)
DROP_REASONS = ('budget', 'control_token_text', 'code', 'maths', 'link', 'table', 'html', 'non_latin',
                '4gram_loop', 'no_structure', 'duplicate_titles', 'empty_item', 'structured_plain')


@dataclasses.dataclass(frozen=True)
class Verdict:
  kept: bool
  reason: str  # '' when kept, else one of DROP_REASONS
  tree_kind: str  # 'list' | 'paragraphs' | '' (a plain answer, or dropped)


def _drop(reason: str) -> Verdict:
  return Verdict(False, reason, '')


def judge(text: str, finished: bool, kind: str) -> Verdict:
  """Keep or drop one answer to a request of `kind` ('list' | 'paragraphs' | 'plain')."""
  if kind not in REQUEST_KINDS:
    raise ValueError(f'request kind must be one of {REQUEST_KINDS}, got {kind!r}')
  if not finished:
    return _drop('budget')
  reason = rejection_reason(text)
  if reason is not None:
    return _drop(reason)
  quality = answer_quality(text, finished)
  if quality.has_loop:
    return _drop('4gram_loop')
  tree = extract_tree(text).tree
  if kind == 'plain':
    if tree is not None or quality.num_items >= 2:
      return _drop('structured_plain')
    return Verdict(True, '', '')
  if tree is None:
    return _drop('no_structure')
  if quality.duplicate_titles:
    return _drop('duplicate_titles')
  if quality.empty_details or any(len(d.split()) < 3 for d in tree.details):
    return _drop('empty_item')
  return Verdict(True, '', tree.kind)


def hopeless(partial_text: str) -> str:
  """'4gram_loop' if the answer so far already loops (it can only get worse), else ''."""
  return '4gram_loop' if answer_quality(partial_text, finished=False).loops_for_good else ''
