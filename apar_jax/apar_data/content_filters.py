"""APAR's content filters: answers that must never be cut into branches.

The authors drop answers with code fences, maths, links, tables, HTML or non-Latin scripts (forking
them breaks code, formulas or markup). Answers that already contain the control tokens' text are
dropped too: their spelling would be read as the control tokens themselves.
"""

import re
import unicodedata
from typing import Optional

from apar_jax.tokenization import CHILD_TOKEN, FORK_TOKEN

_CHECKS: tuple[tuple[str, re.Pattern], ...] = (
    ('code', re.compile(r'```|~~~')),
    ('maths', re.compile(r'\$[^$\n]+\$|\\\(|\\\[|\\(?:frac|sum|int|sqrt|alpha|beta|cdot|times)\b')),
    ('link', re.compile(r'https?://|www\.|\]\(', re.I)),
    ('table', re.compile(r'^\s*\|.*\|\s*$|\|\s*:?-{3,}', re.M)),
    ('html', re.compile(r'</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>')),
)


def _non_latin(text: str) -> bool:
  """True if a letter outside the Latin script occurs (Greek, Cyrillic, CJK, ...)."""
  for ch in text:
    if ord(ch) < 128 or not ch.isalpha():
      continue
    if not unicodedata.name(ch, '').startswith('LATIN'):
      return True
  return False


def rejection_reason(answer: str) -> Optional[str]:
  """Why `answer` may not become an APAR tree (None when it may)."""
  if FORK_TOKEN in answer or CHILD_TOKEN in answer:
    return 'control_token_text'
  for name, pattern in _CHECKS:
    if pattern.search(answer):
      return name
  if _non_latin(answer):
    return 'non_latin'
  return None
