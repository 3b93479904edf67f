"""The APAR tree of one answer (depth 1) and its exact reassembly.

An answer with n forkable items is stored as the parent's text cut into n + 1 pieces and the n cut-out
details:

    answer = parts[0] + details[0] + parts[1] + details[1] + ... + details[n-1] + parts[n]

The parent branch writes `parts[0] [Fork] parts[1] [Fork] ... parts[n]` (then EOS); child k writes
`details[k]` (after the forced `[Child]`, then EOS). Reassembly is the pre-order walk: each piece of
the parent, then the child forked at its end.
"""

import dataclasses
from typing import Literal

Kind = Literal['list', 'paragraphs']


@dataclasses.dataclass(frozen=True)
class AnswerTree:
  """`parts` has one more entry than `details` (text after the last fork, possibly empty)."""
  kind: Kind
  parts: tuple[str, ...]
  details: tuple[str, ...]

  def __post_init__(self):
    if len(self.parts) != len(self.details) + 1:
      raise ValueError(f'an AnswerTree needs len(parts) == len(details) + 1, got {len(self.parts)} '
                       f'parts and {len(self.details)} details')

  @property
  def num_forks(self) -> int:
    return len(self.details)

  def parent_text(self, fork_token: str = '[Fork]') -> str:
    """The parent branch's text with a fork token where each detail was cut out."""
    return fork_token.join(self.parts)


def reassemble(tree: AnswerTree) -> str:
  """The answer the tree was built from (pre-order walk: parent piece, then its child)."""
  pieces = []
  for part, detail in zip(tree.parts, tree.details):
    pieces += [part, detail]
  pieces.append(tree.parts[-1])
  return ''.join(pieces)
