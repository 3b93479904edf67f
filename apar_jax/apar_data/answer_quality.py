"""Quality signals of one answer, without a judge model: its list items and what is wrong with them.

    q = answer_quality(text, finished=True)
    q.items, q.duplicate_titles, q.empty_details, q.repeated_4grams, q.has_loop, q.locked

Used both ways: the distillation drops answers that fail them (`distill_filter.py`) and the APAR
evaluation counts them for the APAR model and the base model side by side.

Items are read leniently (unlike `structure.list_cuts`, which decides where to fork): every top-level
list line (`N.` / `N)` numbered, or `-` `*` `•` bullets when no numbered line exists) starts an item;
a numbered line holding the next numbers inline ("9. 10. 11.") holds several items. An item's title
is its text up to a colon within the first `MAX_TITLE_CHARS` characters (bold marks stripped), and
its detail is what follows, continuation lines and nested bullets included; an item without such a
colon is all detail. The last item is exempt from the empty-detail count when the token budget cut
the answer.
"""

import collections
import dataclasses
import re

MAX_TITLE_CHARS = 80
MIN_DETAIL_WORDS = 3
NGRAM = 4
# A loop: a word 4-gram seen LOOP_MIN_REPEATS times, a LOOP_SPAN-word run seen LOOP_SPAN_REPEATS
# times (a repeated sentence), or LOOP_REPEATED_FRACTION of all 4-grams repeats. A topic's name said
# four times ("the Hubble Space Telescope") is not a loop; the first two rules can only get worse as
# an answer grows (`Quality.loops_for_good`).
LOOP_MIN_REPEATS = 6
LOOP_SPAN = 8
LOOP_SPAN_REPEATS = 3
LOOP_REPEATED_FRACTION = 0.25
# A list "locks" when one title (or title-less item text) comes LOCK_REPEATS times or more: the
# writer of the titles (an APAR root) fell into copying one item instead of ending the list.
LOCK_REPEATS = 5

_NUMBERED = re.compile(r'^[ \t]{0,3}(\d{1,3})[.)](?=\s|$)[ \t]*', re.M)
_BULLET = re.compile(r'^[ \t]{0,1}[-*•](?=[ \t])[ \t]*', re.M)
_WORD = re.compile(r"[A-Za-z0-9']+")


@dataclasses.dataclass(frozen=True)
class Item:
  title: str  # '' when the item has no `Title:`
  detail: str


@dataclasses.dataclass(frozen=True)
class Quality:
  items: tuple[Item, ...]
  duplicate_titles: int  # items whose normalised title (or text, without a title) came before
  empty_details: int  # items whose detail has < MIN_DETAIL_WORDS words (cut last item exempt)
  repeated_4grams: int  # word 4-gram occurrences beyond the first of each
  max_4gram_count: int  # occurrences of the most frequent word 4-gram
  max_span_count: int  # occurrences of the most frequent LOOP_SPAN-word run
  total_4grams: int
  has_loop: bool
  finished: bool
  max_title_repeats: int = 0  # occurrences of the most frequent normalised title (0: no items)

  @property
  def locked(self) -> bool:
    """One item's title came LOCK_REPEATS times or more."""
    return self.max_title_repeats >= LOCK_REPEATS

  @property
  def loops_for_good(self) -> bool:
    """A loop that no continuation of the answer can undo."""
    return self.max_4gram_count >= LOOP_MIN_REPEATS or self.max_span_count >= LOOP_SPAN_REPEATS

  @property
  def num_items(self) -> int:
    return len(self.items)


def _inline_items(first_number: int, text: str) -> list[str]:
  """Splits "text, 10. more 11. rest" at the next expected numbers (first item = `first_number`)."""
  out, number, rest = [], first_number, text
  while (m := re.search(rf'(?:(?<=\s)|^){number + 1}[.)](?=\s|$)', rest)) is not None:
    out.append(rest[:m.start()])
    rest, number = rest[m.end():], number + 1
  return out + [rest]


def _raw_items(text: str) -> list[str]:
  matches = list(_NUMBERED.finditer(text))
  numbered = bool(matches)
  if not numbered:
    matches = list(_BULLET.finditer(text))
  items = []
  for k, m in enumerate(matches):
    end = matches[k + 1].start() if k + 1 < len(matches) else len(text)
    body = text[m.end():end]
    if k + 1 == len(matches):  # the last item ends at a blank line followed by unindented prose
      tail = re.search(r'\n[ \t]*\n(?=\S)(?![-*•]|\d{1,3}[.)])', body)
      if tail:
        body = body[:tail.start()]
    if numbered:
      items += _inline_items(int(m.group(1)), body)
    else:
      items.append(body)
  return items


def _split_title(body: str) -> Item:
  text = body.strip()
  head = text.split('\n', 1)[0]
  colon = head.find(':')
  if 0 < colon <= MAX_TITLE_CHARS + 4:
    title = head[:colon]
    detail = text[colon + 1:]
    if detail.startswith('**'):  # "**Title:** detail"
      detail = detail[2:]
    return Item(title.replace('*', '').strip(), detail.strip())
  return Item('', text)


def list_items(text: str) -> list[Item]:
  """The answer's top-level list items (see the module doc)."""
  return [_split_title(body) for body in _raw_items(text)]


def _normalise(text: str) -> str:
  return ' '.join(_WORD.findall(text.lower()))


def ngram_counts(text: str, n: int = NGRAM) -> collections.Counter:
  words = _WORD.findall(text.lower())
  return collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))


def answer_quality(text: str, finished: bool = True) -> Quality:
  """The quality signals of `text` (`finished`: it ended before the token budget)."""
  items = tuple(list_items(text))
  keys = (_normalise(item.title or item.detail) for item in items)
  titles = collections.Counter(key for key in keys if key)
  duplicates = sum(titles.values()) - len(titles)  # every occurrence after a title's first
  judged = items if finished else items[:-1]
  empty = sum(len(_WORD.findall(item.detail)) < MIN_DETAIL_WORDS for item in judged)
  counts = ngram_counts(text)
  total = sum(counts.values())
  repeated = total - len(counts)
  most = max(counts.values(), default=0)
  span = max(ngram_counts(text, LOOP_SPAN).values(), default=0)
  loop = (most >= LOOP_MIN_REPEATS or span >= LOOP_SPAN_REPEATS
          or (total >= 20 and repeated / total >= LOOP_REPEATED_FRACTION))
  return Quality(items, duplicates, empty, repeated, most, span, total, loop, finished,
                 max(titles.values(), default=0))
