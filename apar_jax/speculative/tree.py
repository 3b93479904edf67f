"""Static token trees for draft verification, built once from a list of paths.

A path `(i, j, ...)` means "the i-th best guess for the first drafted position, then the j-th best for
the one after". Node 0 is the root (the token just decided, fed at the slot's next position); node
`n >= 1` is one path, whose token is rank `rank[n]` of draft head `head[n] = depth[n] - 1`. Nodes are
numbered by (depth, path), so a parent always comes before its children.

Arrays (numpy, static; T nodes, D = max depth, P = number of leaves):
  parent [T] (-1 for the root), depth [T], head [T] (-1 root), rank [T] (-1 root),
  mask [T, T] bool (node i sees j iff j is i or an ancestor of i; the committed cache is seen by all),
  retrieve [P, D + 1] node indices root..leaf of each leaf path, padded with -1,
  children [T, C] node indices of each node's children in rank order, padded with -1.
"""

import dataclasses
from typing import Iterable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class TreeError(ValueError):
  """A tree that cannot be built, or that does not fit the drafter or the capacities."""


Path = tuple[int, ...]


def _normalise(paths: Iterable[Sequence[int]]) -> tuple[Path, ...]:
  out = []
  for p in paths:
    p = tuple(int(x) for x in p)
    if not p:
      raise TreeError('a tree path must be non-empty: the root is implicit, list paths like (0,), '
                      '(0, 1)')
    if min(p) < 0:
      raise TreeError(f'tree path {p} has a negative rank; ranks count from 0 (the best guess)')
    out.append(p)
  if len(set(out)) != len(out):
    dup = sorted({p for p in out if out.count(p) > 1})
    raise TreeError(f'tree paths {dup} are listed more than once')
  present = set(out)
  for p in out:
    if p[:-1] and p[:-1] not in present:
      raise TreeError(f'tree path {p} has no parent path {p[:-1]}: every prefix of a path must be '
                      'listed too')
  return tuple(sorted(out, key=lambda q: (len(q), q)))


@dataclasses.dataclass(frozen=True, eq=False)
class TokenTree:
  """A static draft tree (hashable by its paths, so it can be a static jit argument)."""
  paths: tuple[Path, ...]
  parent: np.ndarray  # [T] int32
  depth: np.ndarray  # [T] int32
  head: np.ndarray  # [T] int32
  rank: np.ndarray  # [T] int32
  mask: np.ndarray  # [T, T] bool
  retrieve: np.ndarray  # [P, D + 1] int32
  children: np.ndarray  # [T, C] int32

  @classmethod
  def from_paths(cls, paths: Iterable[Sequence[int]]) -> 'TokenTree':
    ordered = _normalise(paths)
    t = len(ordered) + 1
    index = {(): 0, **{p: i + 1 for i, p in enumerate(ordered)}}
    parent = np.full((t,), -1, np.int32)
    depth = np.zeros((t,), np.int32)
    head = np.full((t,), -1, np.int32)
    rank = np.full((t,), -1, np.int32)
    for p, n in index.items():
      if p:
        parent[n], depth[n], head[n], rank[n] = index[p[:-1]], len(p), len(p) - 1, p[-1]
    mask = np.zeros((t, t), bool)
    for n in range(t):
      a = n
      while a >= 0:
        mask[n, a] = True
        a = parent[a]
    max_depth = int(depth.max())
    leaves = [n for n in range(t) if not np.any(parent == n)]
    retrieve = np.full((len(leaves), max_depth + 1), -1, np.int32)
    for row, leaf in enumerate(leaves):
      chain = [leaf]
      while parent[chain[-1]] >= 0:
        chain.append(int(parent[chain[-1]]))
      retrieve[row, :len(chain)] = chain[::-1]
    kids = [sorted((n for n in range(t) if parent[n] == p), key=lambda n: rank[n]) for p in range(t)]
    width = max(1, max(len(k) for k in kids))
    children = np.full((t, width), -1, np.int32)
    for p, k in enumerate(kids):
      children[p, :len(k)] = k
    return cls(ordered, parent, depth, head, rank, mask, retrieve, children)

  @classmethod
  def chain(cls, length: int) -> 'TokenTree':
    """The linear tree (0,), (0, 0), ...: one guess per drafted position (prompt lookup)."""
    if length < 0:
      raise TreeError(f'chain length must be >= 0, got {length}')
    return cls.from_paths([(0,) * d for d in range(1, length + 1)])

  @classmethod
  def full(cls, depth: int, width: int) -> 'TokenTree':
    """Every path of `depth` levels with ranks < `width` (width ** depth leaves: keep it small)."""
    paths = [()]
    out = []
    for _ in range(depth):
      paths = [p + (r,) for p in paths for r in range(width)]
      out += paths
    return cls.from_paths(out)

  # ---- sizes ------------------------------------------------------------------------------------
  @property
  def num_nodes(self) -> int:
    """T, the root included: the query tokens of one verification step."""
    return int(self.parent.shape[0])

  @property
  def max_depth(self) -> int:
    """D: draft heads (positions) the tree needs."""
    return int(self.depth.max())

  def topk_needed(self) -> int:
    """Top-k width every head must provide (1 + largest rank; 1 for the root-only tree)."""
    return int(self.rank.max()) + 1 if self.num_nodes > 1 else 1

  # ---- validation against a drafter and the engine capacities -------------------------------------
  def check_drafter(self, num_heads: int, topk: int, what: str = 'the drafter') -> None:
    """Raises TreeError if the tree needs more heads (depth) or ranks (top-k) than a drafter gives."""
    if self.max_depth > num_heads:
      raise TreeError(f'the tree is {self.max_depth} levels deep but {what} proposes only '
                      f'{num_heads} future tokens: use a tree of depth <= {num_heads} or a drafter '
                      f'with more heads / pseudo tokens')
    if self.topk_needed() > topk:
      raise TreeError(f'the tree uses rank {self.topk_needed() - 1} but {what} keeps the top-'
                      f'{topk} tokens per position: raise the drafter top-k to >= '
                      f'{self.topk_needed()} or use a narrower tree')

  def check_capacity(self, max_query_tokens: int, what: str = 'the engine') -> None:
    """Raises TreeError if T nodes exceed the query tokens per slot and step (capacity Q)."""
    if self.num_nodes > max_query_tokens:
      raise TreeError(f'the tree has {self.num_nodes} nodes (root included) but {what} verifies at '
                      f'most {max_query_tokens} tokens per slot and step: raise that capacity or '
                      f'use a smaller tree')

  # ---- per-step device helpers ----------------------------------------------------------------------
  def candidates(self, root: jax.Array, draft: jax.Array) -> jax.Array:
    """Candidate token of every node. root [S], draft [S, K, k] (head, rank) -> [S, T] int32."""
    self.check_drafter(draft.shape[1], draft.shape[2], f'a draft of shape {tuple(draft.shape)}')
    heads = np.maximum(self.head, 0)
    ranks = np.maximum(self.rank, 0)
    picked = draft[:, heads, ranks]  # [S, T]
    return jnp.where(jnp.asarray(self.head >= 0)[None], picked, root[:, None]).astype(jnp.int32)

  def positions(self, lengths: jax.Array) -> jax.Array:
    """Position of every node: lengths [S] -> [S, T] (root at the slot's next position)."""
    return (lengths[:, None] + jnp.asarray(self.depth)[None]).astype(jnp.int32)

  def block_mask(self, num_slots: int, pad_to: Optional[int] = None) -> jax.Array:
    """[S, Q, Q] bool for `branch_attention` (Q = pad_to or T; pad queries see only themselves)."""
    q = self.num_nodes if pad_to is None else pad_to
    self.check_capacity(q, f'a block of {q} query tokens')
    mask = np.eye(q, dtype=bool)
    mask[:self.num_nodes, :self.num_nodes] = self.mask
    return jnp.broadcast_to(jnp.asarray(mask), (num_slots, q, q))

  def __hash__(self) -> int:
    return hash(self.paths)

  def __eq__(self, other: object) -> bool:
    return isinstance(other, TokenTree) and other.paths == self.paths

  def __repr__(self) -> str:
    return f'TokenTree(T={self.num_nodes}, depth={self.max_depth}, paths={list(self.paths)})'
