"""Rebuilding a request's answer from its branch tree (APAR.md, "Reassembling the answer").

Pre-order walk: the parent's tokens before a `[Fork]`, then the child's answer (recursively), then
the parent's continuation. Each branch is cut at its first stop token; `[Fork]`/`[Child]` never
reach the output. The child's own leading space and the parent's `\\n\\n` after the fork are model
output, so joining tokens reproduces the authors' whitespace at the joins.
"""

import dataclasses
from collections import defaultdict
from typing import Iterable, Sequence


@dataclasses.dataclass(frozen=True)
class Branch:
  """One branch of a request's tree as drained from the engine."""
  branch_id: int  # 0 = root
  parent: int  # parent's branch_id, -1 for the root
  fork_point: int  # index in the parent's tokens of the [Fork] that spawned it (-1 for the root)
  depth: int
  tokens: tuple[int, ...]  # emitted tokens ([Child] excluded), the final stop token included
  # The request's decode steps (0-based) in which the branch emitted its first and its last token
  # (-1 = not recorded): its bar on a timeline. AR/APAR emit one token per step in between.
  first_step: int = -1
  last_step: int = -1


def cut_at_stop(tokens: Sequence[int], stop_ids: Iterable[int]) -> tuple[list[int], bool]:
  """(tokens before the first stop id, whether a stop id was found)."""
  stops = set(stop_ids)
  for i, t in enumerate(tokens):
    if t in stops:
      return list(tokens[:i]), True
  return list(tokens), False


def _children(branches: Sequence[Branch]) -> dict[int, dict[int, list[Branch]]]:
  kids: dict[int, dict[int, list[Branch]]] = defaultdict(lambda: defaultdict(list))
  for b in sorted(branches, key=lambda b: b.branch_id):
    if b.parent >= 0:
      kids[b.parent][b.fork_point].append(b)
  return kids


def root_of(branches: Sequence[Branch]) -> Branch:
  roots = [b for b in branches if b.parent < 0]
  if len(roots) != 1:
    raise ValueError(f'a request tree needs exactly one root, got {len(roots)}')
  return roots[0]


def reassemble(branches: Sequence[Branch], control_ids: Iterable[int],
               stop_ids: Iterable[int]) -> list[int]:
  """The answer's ids in pre-order, without control tokens; the root's stop token kept last."""
  control, stops = set(control_ids), tuple(stop_ids)
  kids = _children(branches)

  def walk(b: Branch) -> list[int]:
    seg, _ = cut_at_stop(b.tokens, stops)
    out: list[int] = []
    for i in range(max(len(seg), max(kids[b.branch_id], default=-1) + 1)):
      if i < len(seg) and seg[i] not in control:
        out.append(seg[i])
      for child in kids[b.branch_id].get(i, ()):
        out.extend(walk(child))
    return out

  root = root_of(branches)
  out = walk(root)
  seg, stopped = cut_at_stop(root.tokens, stops)
  if stopped:
    out.append(root.tokens[len(seg)])
  return out


def tree_signature(branches: Sequence[Branch]) -> tuple:
  """A canonical nested form (tokens, ((fork_point, child signature), ...)) for comparing trees."""
  kids = _children(branches)

  def sig(b: Branch) -> tuple:
    mine = kids[b.branch_id]
    children = tuple((fp, sig(c)) for fp in sorted(mine) for c in mine[fp])
    return (tuple(b.tokens), children)

  return sig(root_of(branches))
