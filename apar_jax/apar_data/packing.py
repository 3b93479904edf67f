"""Packing examples into fixed-shape rows for `packed_tree_attention`.

Several examples share a row: each example's branches get their own branch ids, and a root branch
(parent -1) sees nothing outside its own subtree, so examples cannot see each other. A row holds at most
`seq_len` tokens and `max_branches` branches; examples that do not fit into an empty row are dropped
(and counted). Placement is first-fit in the given order.
"""

import dataclasses

import numpy as np

from apar_jax.apar_data.examples import Example
from apar_jax.apar_data.layouts import branch_positions


@dataclasses.dataclass(frozen=True)
class PackedRows:
  tokens: np.ndarray  # [N, T] int32 (0 in padding)
  positions: np.ndarray  # [N, T] int32
  targets: np.ndarray  # [N, T] int32: next token of the same branch (label-aligned)
  weights: np.ndarray  # [N, T] float32: 1 where targets[n, t] is a loss target
  branch_ids: np.ndarray  # [N, T] int32, -1 = padding
  branch_parent: np.ndarray  # [N, NB] int32, -1 = root or unused
  fork_index: np.ndarray  # [N, NB] int32: row index of the parent's [Fork], -1 = root or unused
  dropped: int = 0  # examples too long (seq_len) or too bushy (max_branches) for a row

  @property
  def num_rows(self) -> int:
    return int(self.tokens.shape[0])

  def take(self, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The arrays of the given row indices (a batch), as a dict."""
    return {f.name: getattr(self, f.name)[rows] for f in dataclasses.fields(self)
            if f.name != 'dropped'}


def _weighted(rows: PackedRows, where: np.ndarray, weight: float) -> PackedRows:
  """`rows` with the loss targets at `where` ([N, T] bool) weighted `weight`, the others kept."""
  if weight < 0:
    raise ValueError(f'a target weight must be >= 0, got {weight}')
  scale = np.where(where, np.float32(weight), np.float32(1.0))  # [N, T]
  return dataclasses.replace(rows, weights=(rows.weights * scale).astype(np.float32))


def weight_targets(rows: PackedRows, token_id: int, weight: float) -> PackedRows:
  """`rows` with every loss target equal to `token_id` weighted `weight` (the others keep 1): the
  mean loss then counts that token `weight` times (e.g. `[Fork]`, the one decision APAR adds)."""
  return _weighted(rows, rows.targets == token_id, weight)


def tree_root_tokens(branch_ids, branch_parent):
  """branch_ids [N, T], branch_parent [N, NB] -> [N, T] bool: the token lies in a branch that has a
  child (a tree's root, or a child that forks again). Operators and array methods only, so it runs
  on numpy rows here and on jax batches inside the jitted loss alike."""
  n, nb = branch_parent.shape
  has_child = (branch_parent[:, :, None] == np.arange(nb)).any(axis=1)  # [N, NB]
  return has_child[np.arange(n)[:, None], branch_ids.clip(0)] & (branch_ids >= 0)


def weight_tree_roots(rows: PackedRows, weight: float) -> PackedRows:
  """`rows` with every loss target of a tree's root branch (a branch with children: the list's
  titles, its `[Fork]`s and the root's EOS) weighted `weight`; children and plain answers keep 1.

  The root decides how many items the list has and when it ends, with a small share of the
  targets."""
  return _weighted(rows, tree_root_tokens(rows.branch_ids, rows.branch_parent), weight)


LIST_END_SPAN = 2  # targets from the last [Fork] on: the closing's first two tokens, or its EOS


def list_end_targets(tokens: np.ndarray, branch_ids: np.ndarray, branch_parent: np.ndarray,
                     fork_id: int, span: int = LIST_END_SPAN) -> np.ndarray:
  """tokens/branch_ids [N, T], branch_parent [N, NB] -> [N, T] bool: the first `span` positions
  from the last `[Fork]` on of each branch with children, within the branch. Their targets open the
  list's closing part ("\n", "\n" before "Remember ...", or the EOS) where each earlier `[Fork]`
  is followed by the next item ("\n\n", "3", ...): where a root decides that its list ends."""
  n, t = tokens.shape
  row, col = np.nonzero((tokens == fork_id) & tree_root_tokens(branch_ids, branch_parent))  # [F]
  last = np.full((n, int(branch_ids.max(initial=0)) + 1), -1)  # [N, B]: last [Fork] per branch
  np.maximum.at(last, (row, branch_ids[row, col]), col)
  ends = np.zeros((n, t), bool)
  for r, b in zip(*np.nonzero(last >= 0)):  # one per list
    c = last[r, b]
    ends[r, c:c + span] = branch_ids[r, c:c + span] == b
  return ends


def weight_list_ends(rows: PackedRows, fork_id: int, weight: float) -> PackedRows:
  """`rows` with the targets that end each root's list (`list_end_targets`) weighted `weight`.

  A list of n items gives its root one "stop" decision against n - 1 "next item" ones, so greedy
  decoding rarely stops even where every training list ends; weight ~n - 1 evens the two."""
  return _weighted(rows, list_end_targets(rows.tokens, rows.branch_ids, rows.branch_parent,
                                          fork_id), weight)


class _Row:
  def __init__(self):
    self.examples: list[Example] = []
    self.tokens = 0
    self.branches = 0


def _first_fit(examples: list[Example], seq_len: int, max_branches: int) -> tuple[list[_Row], int]:
  rows: list[_Row] = []
  dropped = 0
  for ex in examples:
    n, nb = ex.num_tokens, len(ex.branches)
    if n > seq_len or nb > max_branches:
      dropped += 1
      continue
    for row in rows:
      if row.tokens + n <= seq_len and row.branches + nb <= max_branches:
        break
    else:
      row = _Row()
      rows.append(row)
    row.examples.append(ex)
    row.tokens += n
    row.branches += nb
  return rows, dropped


def pack_rows(examples: list[Example], seq_len: int, max_branches: int) -> PackedRows:
  """Packs `examples` into [N, seq_len] rows; see the module docstring."""
  if seq_len < 2 or max_branches < 1:
    raise ValueError(f'need seq_len >= 2 and max_branches >= 1, got {seq_len}, {max_branches}')
  rows, dropped = _first_fit(examples, seq_len, max_branches)
  n = len(rows)
  out = dict(tokens=np.zeros((n, seq_len), np.int32), positions=np.zeros((n, seq_len), np.int32),
             targets=np.zeros((n, seq_len), np.int32), weights=np.zeros((n, seq_len), np.float32),
             branch_ids=np.full((n, seq_len), -1, np.int32),
             branch_parent=np.full((n, max_branches), -1, np.int32),
             fork_index=np.full((n, max_branches), -1, np.int32))
  for r, row in enumerate(rows):
    at, bid = 0, 0
    for ex in row.examples:
      starts = []
      for b, pos in zip(ex.branches, branch_positions(ex)):
        length = len(b.tokens)
        sl = slice(at, at + length)
        out['tokens'][r, sl] = b.tokens
        out['positions'][r, sl] = pos
        out['targets'][r, sl] = b.targets()
        out['weights'][r, sl] = b.target_flags()
        out['branch_ids'][r, sl] = bid + len(starts)
        if b.parent >= 0:
          out['branch_parent'][r, bid + len(starts)] = bid + b.parent
          out['fork_index'][r, bid + len(starts)] = starts[b.parent] + b.fork_at
        starts.append(at)
        at += length
      bid += len(ex.branches)
  return PackedRows(**out, dropped=dropped)
