"""An answer's text while it decodes: the part of the branch tree that can no longer change
(streamed by the server and `demo`).

The engine reports each branch's new tokens after every chunk (`TokensEvent`, device order). The
answer reads in pre-order (`tree_reassembly.reassemble`): a parent's tokens up to a `[Fork]`, the
child's whole answer, then the parent's continuation. So the readable prefix ends at the first
`[Fork]` whose child has not finished (or not appeared yet: a granted fork's child becomes visible a
step or two later; a refused `[Fork]` is re-chosen, never emitted). AR answers have one branch, so
everything decoded is readable at once.

`AnswerText` turns that prefix into text pieces (through `IncrementalDecoder`, so the pieces add up
to the final `Result.text`) and applies OpenAI `stop` sequences: the text ends before the first one,
and text that could be the start of one is held back until it is not.
"""

import dataclasses
from typing import Iterable, Optional, Sequence

from apar_jax.engine.host.requests import Result, TokensEvent
from apar_jax.tokenization import IncrementalDecoder, Tokenizer


@dataclasses.dataclass
class _Branch:
  parent: int
  fork_point: int
  tokens: list[int] = dataclasses.field(default_factory=list)


def stable_ids(branches: dict[int, _Branch], fork_id: int, child_id: int,
               stop_ids: frozenset[int]) -> list[int]:
  """The pre-order answer ids that no later token can change (no control or stop tokens)."""
  kids: dict[tuple[int, int], list[int]] = {}
  for b_id in sorted(branches):
    b = branches[b_id]
    if b.parent >= 0:
      kids.setdefault((b.parent, b.fork_point), []).append(b_id)
  out: list[int] = []

  def walk(b_id: int) -> bool:
    """Appends branch `b_id`'s readable ids; True if the branch is finished (ended at a stop)."""
    for i, t in enumerate(branches[b_id].tokens):
      if t in stop_ids:
        return True
      if t == fork_id:
        children = kids.get((b_id, i))
        if not children:
          return False  # its child is not visible yet
        for c in children:
          if not walk(c):
            return False
      elif t != child_id:
        out.append(t)
    return False  # still decoding (or cut by its budget: known only once the request is done)

  if 0 in branches:
    walk(0)
  return out


class AnswerText:
  """Text pieces of one answer as it decodes, cut at the first stop sequence."""

  def __init__(self, tokenizer: Tokenizer, fork_id: int, child_id: int, stop_ids: Iterable[int],
               stop_sequences: Sequence[str] = ()):
    self._decoder = IncrementalDecoder(tokenizer)
    self._control = (fork_id, child_id)
    self._stop_ids = frozenset(int(i) for i in stop_ids)
    self._stops = tuple(stop_sequences)
    self._branches: dict[int, _Branch] = {}
    self._decoded = 0  # stable ids pushed into the decoder
    self._text = ''  # decoded text (before any stop sequence), not all of it sent yet
    self._sent = 0  # characters of `_text` handed out
    self.stopped = False  # a stop sequence was found: the answer ends before it

  def add(self, event: TokensEvent) -> str:
    """Takes one branch's new tokens; returns the text that became final ('' if none)."""
    branch = self._branches.setdefault(event.branch_id, _Branch(event.parent, event.fork_point))
    branch.tokens.extend(event.new_tokens)
    ids = stable_ids(self._branches, *self._control, self._stop_ids)
    return self._push(ids[self._decoded:], final=False)

  def finish(self, result: Result) -> str:
    """The rest of the answer once the request is done (`result.token_ids`: the whole answer)."""
    return self._push(result.token_ids[self._decoded:], final=True)

  @property
  def text(self) -> str:
    """Everything handed out so far."""
    return self._text[:self._sent]

  def _push(self, ids: Sequence[int], final: bool) -> str:
    if self.stopped:
      return ''
    self._decoded += len(ids)
    for t in ids:
      self._text += self._decoder.push(t)
    if final:
      self._text += self._decoder.flush()
    cut = self._first_stop()
    if cut is not None:
      self._text, self.stopped = self._text[:cut], True
      end = cut
    else:
      end = len(self._text) if final else len(self._text) - self._held_back()
    piece, self._sent = self._text[self._sent:end], max(self._sent, end)
    return piece

  def _first_stop(self) -> Optional[int]:
    # A stop sequence may straddle what was sent and what is new, not lie within the sent text.
    start = max(0, self._sent - max((len(s) for s in self._stops), default=0))
    found = [i for i in (self._text.find(s, start) for s in self._stops) if i >= 0]
    return min(found) if found else None

  def _held_back(self) -> int:
    """Length of the longest end of the text that begins some stop sequence."""
    longest = 0
    for s in self._stops:
      for n in range(min(len(s) - 1, len(self._text) - self._sent), longest, -1):
        if self._text.endswith(s[:n]):
          longest = n
          break
    return longest
