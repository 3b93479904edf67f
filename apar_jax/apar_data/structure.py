"""Finding the forkable structure of an answer: list items or paragraphs (APAR's rules, plus ours).

List mode (tried first): items `N. Title: details`, `N. **Title**: details`, `N. **Title:** details`
(`*Title*:` too) and the same behind `-` or `*` bullets (our addition), one style per answer, numbers consecutive, at
least 3 items, every detail at least 10 characters and holding no nested numbered list (nested `-`
`*` `•` `+` bullets inside a numbered item are the child's to write). The parent keeps
`N. Title:`; the child holds the detail after the colon (leading space included); the whitespace
before the next item stays in the parent. The last item's detail ends at the first blank line.

Paragraph mode: more than 2 blank-line-separated paragraphs, no list lines; each paragraph of at least
20 characters whose first sentence is followed by more text forks after that sentence's `. ` (the parent
keeps the sentence and the space); at least 3 forks.

Answers failing `content_filters.rejection_reason` (code, maths, links, ...) get no tree.
"""

import dataclasses
import re
from typing import Optional

from apar_jax.apar_data.answer_tree import AnswerTree, Kind
from apar_jax.apar_data.content_filters import rejection_reason

MIN_ITEMS = 3
MIN_DETAIL_CHARS = 10
MIN_PARAGRAPHS = 3
MIN_PARAGRAPH_CHARS = 20
MIN_PARAGRAPH_FORKS = 3
MAX_TITLE_CHARS = 80

_TITLE = rf'(?:\*\*[^*\n]{{1,{MAX_TITLE_CHARS}}}?\*\*[ \t]*[:：]|\*\*[^*\n:：]{{1,{MAX_TITLE_CHARS}}}?[:：]\*\*' \
         rf'|\*[^*\n]{{1,{MAX_TITLE_CHARS}}}?\*[ \t]*[:：]|[^*\n:：]{{1,{MAX_TITLE_CHARS}}}?[:：])'
_ITEM = re.compile(rf'^(?P<marker>\d+\.|[-*])[ \t]+{_TITLE}(?=\s|$)', re.M)
_LIST_LINE = re.compile(r'^[ \t]*(?:\d+[.)]|[-*•+])[ \t]+\S', re.M)
_NESTED_LIST_LINE = re.compile(r'\n[ \t]*(?:\d+[.)]|[-*•+])[ \t]+\S')
_NESTED_NUMBERED_LINE = re.compile(r'\n[ \t]*\d+[.)][ \t]+\S')
_BLANK_LINE = re.compile(r'\n[ \t]*\n')
_PARAGRAPH_SPLIT = re.compile(r'\n[ \t]*\n\s*')
_ABBREVIATIONS = frozenset({'e.g', 'i.e', 'etc', 'vs', 'mr', 'mrs', 'ms', 'dr', 'st', 'no', 'jr', 'sr',
                            'prof', 'inc', 'approx', 'fig'})
_SENTENCE_END = re.compile(r'(?P<word>[\w.]+)[.!?] (?=["\'(A-Z0-9])')


@dataclasses.dataclass(frozen=True)
class Extraction:
  """The tree of an answer, or why there is none (`reason`: 'no_structure', 'code', 'maths', ...)."""
  tree: Optional[AnswerTree]
  reason: Optional[str] = None


def _tree_from_cuts(text: str, kind: Kind, cuts: list[tuple[int, int]]) -> AnswerTree:
  """cuts: (start, end) of each detail, ascending and disjoint."""
  parts, details, prev = [], [], 0
  for start, end in cuts:
    parts.append(text[prev:start])
    details.append(text[start:end])
    prev = end
  parts.append(text[prev:])
  return AnswerTree(kind, tuple(parts), tuple(details))


def _style(marker: str) -> str:
  return 'numbered' if marker[0].isdigit() else marker


def list_cuts(text: str) -> Optional[list[tuple[int, int]]]:
  """Detail spans of a list answer, or None when the list rules fail."""
  matches = list(_ITEM.finditer(text))
  if not matches:
    return None
  styles = [_style(m.group('marker')) for m in matches]
  # A numbered list wins over its own nested bullets, however many there are.
  style = ('numbered' if styles.count('numbered') >= MIN_ITEMS else
           max(('numbered', '-', '*'), key=styles.count))
  items = [m for m, s in zip(matches, styles) if s == style]
  nested = _NESTED_NUMBERED_LINE if style == 'numbered' else _NESTED_LIST_LINE
  if len(items) < MIN_ITEMS:
    return None
  ends_run = [k + 1 == len(items) for k in range(len(items))]
  if style == 'numbered':
    # Consecutive numbers; a list may start again at 1 ("Pros: 1. 2. 3. Cons: 1. 2."): then the
    # item before the restart ends at its first blank line, like the last one.
    numbers = [int(m.group('marker')[:-1]) for m in items]
    for k in range(1, len(numbers)):
      if numbers[k] == 1 and numbers[k - 1] >= 2:
        ends_run[k - 1] = True
      elif numbers[k] != numbers[k - 1] + 1:
        return None
  cuts = []
  for k, m in enumerate(items):
    start = m.end()
    if not ends_run[k]:
      limit = items[k + 1].start()
    else:
      blank = _BLANK_LINE.search(text, start)
      limit = blank.start() if blank else len(text)
    detail = text[start:limit].rstrip()
    if len(detail.strip()) < MIN_DETAIL_CHARS or nested.search(detail):
      return None
    cuts.append((start, start + len(detail)))
  return cuts


def _first_sentence_end(paragraph: str) -> Optional[int]:
  """Index just after the first sentence's `. ` (the space included), or None."""
  for m in _SENTENCE_END.finditer(paragraph):
    word = m.group('word').lower()
    if len(word.strip('.')) >= 2 and word not in _ABBREVIATIONS:
      return m.end()
  return None


def paragraph_cuts(text: str) -> Optional[list[tuple[int, int]]]:
  """Detail spans of a multi-paragraph answer, or None when the paragraph rules fail."""
  if _LIST_LINE.search(text):
    return None
  spans, pos = [], 0
  for sep in _PARAGRAPH_SPLIT.finditer(text):
    spans.append((pos, sep.start()))
    pos = sep.end()
  spans.append((pos, len(text)))
  spans = [(a, a + len(text[a:b].rstrip())) for a, b in spans if text[a:b].strip()]
  if len(spans) < MIN_PARAGRAPHS:
    return None
  cuts = []
  for a, b in spans:
    paragraph = text[a:b]
    if len(paragraph) < MIN_PARAGRAPH_CHARS:
      continue
    end = _first_sentence_end(paragraph)
    if end is not None and len(paragraph[end:].strip()) >= MIN_DETAIL_CHARS:
      cuts.append((a + end, b))
  return cuts if len(cuts) >= MIN_PARAGRAPH_FORKS else None


def extract_tree(answer: str) -> Extraction:
  """The APAR tree of `answer` (list mode first, then paragraph mode), or the reason for none."""
  reason = rejection_reason(answer)
  if reason is not None:
    return Extraction(None, reason)
  cuts = list_cuts(answer)
  if cuts is not None:
    return Extraction(_tree_from_cuts(answer, 'list', cuts))
  cuts = paragraph_cuts(answer)
  if cuts is not None:
    return Extraction(_tree_from_cuts(answer, 'paragraphs', cuts))
  return Extraction(None, 'no_structure')
