"""Test inputs and independent numpy oracles for the pallas_kernels tests (not collected by pytest).

The oracles are written from the contract text with plain loops (float64), sharing no code with
`pallas_kernels`: walk the page table to a contiguous cache, list the visible positions, softmax.
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
from hypothesis import strategies as st

from apar_jax.testing.attention_tolerance import attention_tolerance
from apar_jax.testing.rounding import assert_within


def assert_attention_close(got, want, q, k, v, *, scale: float, dtype: str,
                           exact_reference: bool = False, calls: int = 1,
                           err_msg: str = "") -> None:
  """Attention outputs (kernel or reference vs reference / float64 oracle) agree as rounding allows
  (`apar_jax.testing.attention_tolerance`: score rounding amplified by the largest score, relative to
  max |v|; bf16's two roundings; one rounding side against the float64 oracle)."""
  atol = attention_tolerance(q, k, v, scale=scale, dtype=dtype, exact_reference=exact_reference,
                             calls=calls, values=np.size(want))
  sides = 1 if exact_reference else 2
  assert_within(got, want, atol, why=f"{sides} rounded {dtype} attention computation(s)",
                err_msg=err_msg)


@dataclasses.dataclass(frozen=True)
class BranchFamily:
  """Static shapes of one compiled configuration."""
  slots: int
  q_len: int
  kv_heads: int
  group: int
  head_dim: int
  page_size: int
  pages_per_slot: int
  num_pages: int
  dtype: str


@dataclasses.dataclass
class BranchCase:
  q: np.ndarray
  k_pages: np.ndarray
  v_pages: np.ndarray
  page_tables: np.ndarray
  lengths: np.ndarray
  block_mask: np.ndarray

  def jnp_args(self, dtype: str):
    return (jnp.asarray(self.q, dtype), jnp.asarray(self.k_pages, dtype),
            jnp.asarray(self.v_pages, dtype), jnp.asarray(self.page_tables, jnp.int32),
            jnp.asarray(self.lengths, jnp.int32), jnp.asarray(self.block_mask))


def tree_block_mask(parents: list[int]) -> np.ndarray:
  """[Q, Q] mask of a candidate tree: node i sees itself and its ancestors (parents[0] = -1)."""
  q_len = len(parents)
  mask = np.zeros((q_len, q_len), bool)
  for i in range(q_len):
    node = i
    while node >= 0:
      mask[i, node] = True
      node = parents[node]
  return mask


@st.composite
def branch_cases(draw, fam: BranchFamily, nan_garbage: bool = True) -> BranchCase:
  """Lengths 0 / 1 / page-aligned / ragged, shared pages, causal / tree / arbitrary masks; every
  cache position no slot may read is NaN when `nan_garbage`."""
  rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
  s, q_len, ps, pps = fam.slots, fam.q_len, fam.page_size, fam.pages_per_slot
  capacity = ps * pps
  lengths = []
  for _ in range(s):
    kind = draw(st.sampled_from(["zero", "one", "aligned", "ragged", "full"]))
    top = capacity - q_len
    value = {"zero": 0, "one": 1, "aligned": ps * draw(st.integers(0, top // ps)),
             "ragged": draw(st.integers(0, top)), "full": top}[kind]
    lengths.append(min(value, top))
  lengths = np.array(lengths, np.int32)
  tables = np.zeros((s, pps), np.int32)
  for slot in range(s):
    used = -(-(lengths[slot] + q_len) // ps)
    fresh = rng.permutation(fam.num_pages)[:pps]
    tables[slot] = fresh
    if slot > 0 and draw(st.booleans()):  # fork-like: share a prefix of the previous slot's pages
      shared = draw(st.integers(0, pps))
      tables[slot, :shared] = tables[slot - 1, :shared]
    unused = draw(st.sampled_from(["zero", "random", "keep"]))
    if unused == "zero":
      tables[slot, used:] = 0
    elif unused == "random":
      tables[slot, used:] = rng.integers(0, fam.num_pages, pps - used)
  masks = []
  for _ in range(s):
    kind = draw(st.sampled_from(["causal", "tree", "arbitrary"]))
    if kind == "causal":
      masks.append(np.tril(np.ones((q_len, q_len), bool)))
    elif kind == "tree":
      masks.append(tree_block_mask([-1] + [int(rng.integers(0, i)) for i in range(1, q_len)]))
    else:
      masks.append(rng.random((q_len, q_len)) < 0.5)
  hq = fam.kv_heads * fam.group
  shape = (fam.num_pages, ps, fam.kv_heads, fam.head_dim)
  k_pages = rng.standard_normal(shape).astype(np.float32)
  v_pages = rng.standard_normal(shape).astype(np.float32)
  if nan_garbage:
    needed = np.zeros((fam.num_pages, ps), bool)
    for slot in range(s):
      for pos in range(lengths[slot] + q_len):
        needed[tables[slot, pos // ps], pos % ps] = True
    k_pages[~needed] = np.nan
    v_pages[~needed] = np.nan
  q = rng.standard_normal((s, q_len, hq, fam.head_dim)).astype(np.float32)
  return BranchCase(q, k_pages, v_pages, tables, lengths, np.stack(masks))


def _softmax_attend(qv: np.ndarray, keys: np.ndarray, values: np.ndarray, scale: float,
                    soft_cap: float | None) -> np.ndarray:
  if keys.shape[0] == 0:
    return np.zeros_like(qv)
  logits = keys @ qv * scale
  if soft_cap is not None:
    logits = soft_cap * np.tanh(logits / soft_cap)
  weights = np.exp(logits - logits.max())
  return weights @ values / weights.sum()


def branch_oracle(case: BranchCase, *, scale: float, soft_cap: float | None = None,
                  dtype: str = "float32") -> np.ndarray:
  """Dense float64 attention per slot / query / head from the contract text."""
  cast = lambda x: np.asarray(jnp.asarray(x, dtype).astype(jnp.float32), np.float64)
  q, kp, vp = cast(case.q), cast(case.k_pages), cast(case.v_pages)
  s, q_len, hq, d = q.shape
  ps, hkv = kp.shape[1], kp.shape[2]
  out = np.zeros((s, q_len, hq, d))
  for slot in range(s):
    length = int(case.lengths[slot])
    pos = np.arange(length + q_len)
    pages = case.page_tables[slot, pos // ps]
    keys, values = kp[pages, pos % ps], vp[pages, pos % ps]  # [L + Q, Hkv, D]
    for i in range(q_len):
      seen = list(range(length)) + [length + j for j in range(q_len) if case.block_mask[slot, i, j]]
      for h in range(hq):
        kv = h // (hq // hkv)
        out[slot, i, h] = _softmax_attend(q[slot, i, h], keys[seen, kv], values[seen, kv], scale,
                                          soft_cap)
  return out


# ---- packed trees ----

@dataclasses.dataclass
class TreeCase:
  q: np.ndarray  # [B, T, Hq, D]
  k: np.ndarray  # [B, T, Hkv, D]
  v: np.ndarray
  branch_ids: np.ndarray  # [B, T]
  branch_parent: np.ndarray  # [B, NB]
  fork_index: np.ndarray  # [B, NB]

  def jnp_args(self, dtype: str):
    return (jnp.asarray(self.q, dtype), jnp.asarray(self.k, dtype), jnp.asarray(self.v, dtype),
            jnp.asarray(self.branch_ids, jnp.int32), jnp.asarray(self.branch_parent, jnp.int32),
            jnp.asarray(self.fork_index, jnp.int32))


def random_packed_tree(rng: np.random.Generator, seq_len: int, num_branches: int, max_depth: int,
                       interleave: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """One row: a random tree of up to `num_branches` branches and depth <= max_depth, its tokens
  packed either branch after branch or randomly interleaved (a child only after its fork token),
  followed by padding. Unused branch slots get parent/fork garbage in range."""
  used = int(rng.integers(1, num_branches + 1))
  parent, depth = [-1], [1]
  for b in range(1, used):
    options = [a for a in range(b) if depth[a] < max_depth]
    parent.append(int(rng.choice(options)))
    depth.append(depth[parent[-1]] + 1)
  real = int(rng.integers(used, seq_len + 1))
  sizes = np.ones(used, int) + np.bincount(rng.integers(0, used, real - used), minlength=used)
  ids = np.full(seq_len, -1, np.int64)
  fork = [-1] * used
  emitted = [0] * used
  rows: list[list[int]] = [[] for _ in range(used)]
  fork_after = [0] + [int(rng.integers(1, sizes[parent[b]] + 1)) for b in range(1, used)]
  row = 0
  while row < real:
    ready = [b for b in range(used) if emitted[b] < sizes[b]
             and (b == 0 or emitted[parent[b]] >= fork_after[b])]
    if not interleave:
      ready = ready[:1]
    b = int(rng.choice(ready))
    ids[row] = b
    rows[b].append(row)
    emitted[b] += 1
    row += 1
  for b in range(1, used):
    fork[b] = rows[parent[b]][fork_after[b] - 1]
  parents = np.array(parent + list(rng.integers(-1, used, num_branches - used)), np.int64)
  forks = np.array(fork + list(rng.integers(0, seq_len, num_branches - used)), np.int64)
  return ids, parents, forks


def tree_oracle_mask(ids: np.ndarray, parents: np.ndarray, forks: np.ndarray) -> np.ndarray:
  """[T, T] by walking the contract's rule for every pair."""
  t = len(ids)
  mask = np.zeros((t, t), bool)
  for i in range(t):
    for j in range(i + 1):
      bi, bj = ids[i], ids[j]
      if bi < 0 or bj < 0:
        continue
      if bi == bj:
        mask[i, j] = True
        continue
      child = bi
      while parents[child] >= 0:
        if parents[child] == bj:
          mask[i, j] = j <= forks[child]
          break
        child = parents[child]
  return mask


@st.composite
def tree_cases(draw, batch: int, seq_len: int, num_branches: int, max_depth: int, kv_heads: int,
               group: int, head_dim: int) -> TreeCase:
  rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
  interleave = draw(st.booleans())
  rows = [random_packed_tree(rng, seq_len, num_branches, max_depth, interleave)
          for _ in range(batch)]
  ids, parents, forks = (np.stack(x).astype(np.int32) for x in zip(*rows))
  q = rng.standard_normal((batch, seq_len, kv_heads * group, head_dim)).astype(np.float32)
  k = rng.standard_normal((batch, seq_len, kv_heads, head_dim)).astype(np.float32)
  v = rng.standard_normal((batch, seq_len, kv_heads, head_dim)).astype(np.float32)
  return TreeCase(q, k, v, ids, parents, forks)


def tree_oracle(case: TreeCase, *, scale: float, soft_cap: float | None = None,
                dtype: str = "float32") -> np.ndarray:
  cast = lambda x: np.asarray(jnp.asarray(x, dtype).astype(jnp.float32), np.float64)
  q, k, v = cast(case.q), cast(case.k), cast(case.v)
  b, t, hq, d = q.shape
  g = hq // k.shape[2]
  out = np.zeros((b, t, hq, d))
  for row in range(b):
    mask = tree_oracle_mask(case.branch_ids[row], case.branch_parent[row], case.fork_index[row])
    for i in range(t):
      seen = np.nonzero(mask[i])[0]
      for h in range(hq):
        out[row, i, h] = _softmax_attend(q[row, i, h], k[row, seen, h // g], v[row, seen, h // g],
                                         scale, soft_cap)
  return out
