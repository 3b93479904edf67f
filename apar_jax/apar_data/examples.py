"""Tokenised training examples: a tree of branches (an APAR answer) or one branch (plain chat).

A branch is a run of input tokens; a child branch hangs off a `[Fork]` of its parent. Loss targets are
next tokens *within a branch*: `tokens[j]` is a target (predicted from `tokens[j - 1]`) iff
`j >= first_target`. So the prompt is never a target (the root's `first_target` is the prompt
length), and neither is `[Child]` (a child's `first_target` is 1; the parent's `[Fork]` predicts the
parent's own next token). Every branch ends with EOS, which is a target.
"""

import dataclasses
from typing import Optional, Sequence

from apar_jax.apar_data.answer_tree import AnswerTree
from apar_jax.tokenization import Tokenizer


@dataclasses.dataclass(frozen=True)
class Branch:
  tokens: tuple[int, ...]
  parent: int  # index of the parent branch in the example, -1 for the root
  fork_at: int  # index in the parent's tokens of the [Fork] this branch hangs off, -1 for the root
  first_target: int  # tokens[first_target:] are loss targets

  def target_flags(self) -> list[bool]:
    """Label-aligned: flag j says whether tokens[j + 1] is a target (last token: False)."""
    n = len(self.tokens)
    return [j + 1 < n and j + 1 >= self.first_target for j in range(n)]

  def targets(self) -> list[int]:
    """Label-aligned next tokens (0 where there is none)."""
    return list(self.tokens[1:]) + [0]


@dataclasses.dataclass(frozen=True)
class Example:
  """Branches in pre-order (every parent before its children); branch 0 is the root."""
  branches: tuple[Branch, ...]
  is_apar: bool

  def __post_init__(self):
    for i, b in enumerate(self.branches):
      if (i == 0) != (b.parent == -1) or b.parent >= i:
        raise ValueError(f'branch {i} has parent {b.parent}: the root must come first and every '
                         'parent before its children')

  @property
  def num_tokens(self) -> int:
    return sum(len(b.tokens) for b in self.branches)

  @property
  def num_targets(self) -> int:
    return sum(sum(b.target_flags()) for b in self.branches)


def plain_example(prompt_ids: Sequence[int], answer_ids: Sequence[int], eos_id: int) -> Example:
  """One branch: prompt, answer, EOS; the answer and EOS are targets."""
  if not prompt_ids:
    raise ValueError('a training example needs a non-empty prompt')
  tokens = tuple(prompt_ids) + tuple(answer_ids) + (eos_id,)
  return Example((Branch(tokens, -1, -1, len(prompt_ids)),), is_apar=False)


def tree_example(prompt_ids: Sequence[int], part_ids: Sequence[Sequence[int]],
                 detail_ids: Sequence[Sequence[int]], *, fork_id: int, child_id: int,
                 eos_id: int) -> Example:
  """Root: prompt, part 0, [Fork], part 1, [Fork], ..., part n, EOS; child k: [Child], detail k, EOS."""
  if len(part_ids) != len(detail_ids) + 1:
    raise ValueError('a tree example needs one more part than details')
  root = list(prompt_ids)
  forks = []
  for k, part in enumerate(part_ids):
    root += list(part)
    if k < len(detail_ids):
      forks.append(len(root))
      root.append(fork_id)
  root.append(eos_id)
  branches = [Branch(tuple(root), -1, -1, len(prompt_ids))]
  for fork_at, detail in zip(forks, detail_ids):
    branches.append(Branch((child_id,) + tuple(detail) + (eos_id,), 0, fork_at, 1))
  return Example(tuple(branches), is_apar=True)


def tokenize_exchange(tokenizer: Tokenizer, prompt_ids: Sequence[int], answer: str,
                      tree: Optional[AnswerTree]) -> Example:
  """The example of one answer: an APAR tree when `tree` is given, else plain chat."""
  if tree is None:
    return plain_example(prompt_ids, tokenizer.encode(answer), tokenizer.eos_id)
  if tokenizer.fork_id is None or tokenizer.child_id is None:
    raise ValueError('the tokenizer has no [Fork]/[Child] tokens: load it with add_apar_tokens=True')
  return tree_example(prompt_ids, [tokenizer.encode(p) for p in tree.parts],
                      [tokenizer.encode(d) for d in tree.details], fork_id=tokenizer.fork_id,
                      child_id=tokenizer.child_id, eos_id=tokenizer.eos_id)
