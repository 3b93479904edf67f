"""`SpecConfig`: the static part of a speculative mode that the compiled step reads (its drafter,
tree, acceptance rule and per-bucket trees). Resolved from `config.speculative` by
`engine.setup.speculative`."""

import dataclasses

from apar_jax.speculative.drafter import Drafter
from apar_jax.speculative.tree import TokenTree


@dataclasses.dataclass(frozen=True)
class SpecConfig:
  """Static part of a speculative mode (hashable: part of the compile key)."""
  drafter: Drafter
  tree: TokenTree  # the widest tree any bucket verifies (sizes the verification window)
  acceptance: str = 'exact'
  bucket_trees: tuple[tuple[int, TokenTree], ...] = ()  # (rows, tree) per row bucket; () = `tree`

  def for_rows(self, rows: int) -> 'SpecConfig':
    """The mode as a step on a bucket of `rows` rows runs it: that bucket's tree (the smallest
    bucket holding `rows` that has one, else `tree`)."""
    tree = next((t for r, t in sorted(self.bucket_trees) if r >= rows), self.tree)
    return dataclasses.replace(self, tree=tree, bucket_trees=())

  def without_draft(self) -> 'SpecConfig':
    """The same mode verifying the root alone (a bucket's chunk while drafting does not pay)."""
    return dataclasses.replace(self, tree=TokenTree.from_paths([]), bucket_trees=())

  @property
  def drafts(self) -> bool:
    """False when every bucket verifies the root alone ("no draft" everywhere)."""
    return self.tree.num_nodes > 1

  @property
  def query_tokens(self) -> int:
    """Q: positions one verification step writes per slot (tree nodes; Hidden Transfer 'verify'
    adds one pseudo token per tree level to every node in the upper layers)."""
    t = self.tree.num_nodes
    if self.drafter.kind == 'hidden_transfer' and t > 1:  # pseudo tokens for the levels it reads
      return t * (1 + self.tree.max_depth)
    return t

  @property
  def slack(self) -> int:
    """Positions past a branch's last budgeted token that a step may write (pages reserved)."""
    return self.query_tokens - 1
