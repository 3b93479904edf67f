"""The two training layouts of a tree example, and what each costs in tokens.

* APAR's layout (`branch_layout`): one sequence per branch, i.e. the path from the root through the
  ancestors' tokens up to and including the `[Fork]` each child hangs off, then the branch's own
  tokens. Only the branch's own targets count, so a child row masks everything through `[Child]`.
* Packed trees (`Example` itself, packed by `packing.pack_rows`): every branch once in one row, the
  shared prefix once, positions along root-to-node paths, packed-tree attention.
Both see the same context for every target, so both give the same loss.
"""

import dataclasses

from apar_jax.apar_data.examples import Branch, Example


def branch_path_prefix(example: Example, index: int) -> tuple[int, ...]:
  """Tokens before branch `index` in its own sequence: each ancestor up to and including its fork."""
  prefix: tuple[int, ...] = ()
  b = example.branches[index]
  while b.parent >= 0:
    parent = example.branches[b.parent]
    prefix = parent.tokens[:b.fork_at + 1] + prefix
    b = parent
  return prefix


def branch_layout(example: Example) -> list[Example]:
  """One single-branch example per branch (APAR's one-row-per-branch layout)."""
  rows = []
  for i, b in enumerate(example.branches):
    prefix = branch_path_prefix(example, i)
    row = Branch(prefix + b.tokens, -1, -1, len(prefix) + b.first_target)
    rows.append(Example((row,), is_apar=example.is_apar))
  return rows


def branch_positions(example: Example) -> list[list[int]]:
  """Position of every token of every branch: a child's `[Child]` sits right after its `[Fork]`."""
  positions: list[list[int]] = []
  for b in example.branches:
    start = 0 if b.parent < 0 else positions[b.parent][b.fork_at] + 1
    positions.append(list(range(start, start + len(b.tokens))))
  return positions


@dataclasses.dataclass(frozen=True)
class TokenCounts:
  branch_layout: int  # tokens fed with one row per branch
  packed: int  # tokens fed with packed trees
  targets: int  # loss targets (the same in both)

  @property
  def saving(self) -> float:
    """Fraction of the branch layout's tokens that packing saves."""
    return 1.0 - self.packed / self.branch_layout if self.branch_layout else 0.0


def token_counts(examples: list[Example]) -> TokenCounts:
  per_branch = sum(ex.num_tokens for e in examples for ex in branch_layout(e))
  return TokenCounts(per_branch, sum(e.num_tokens for e in examples),
                     sum(e.num_targets for e in examples))
