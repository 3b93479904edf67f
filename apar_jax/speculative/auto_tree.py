"""Choosing the draft tree from measurements instead of a hand-written list.

Inputs: acceptance rates acc [D, K] (acc[d, r] = probability that head d's rank-r guess is the base
model's token at depth d + 1, measured on held-out text) and the measured time of one verification
step with T query tokens per slot on the current backend.

1. Paths. Treating positions as independent, a node on path (r_1, ..., r_d) is accepted with
   probability prod_i acc[i - 1, r_i], and the expected tokens per step of a tree is
   1 + sum over its nodes of that product (the 1 is the bonus token). A child's value never exceeds
   its parent's, so taking nodes greedily by value (a heap over the frontier) gives the best tree of
   every size T at once, and always a valid (prefix-closed) one.
2. Size. Tokens per second with T nodes is E(T) / time(T). The builder takes the T that maximises
   it: growing the tree stops paying once the relative cost of one more node exceeds its relative
   expected gain (dt / t > dE / E). Memory-bound backends (TPU/GPU, and CPU for small T) pay little
   for extra nodes, so they get larger trees; a backend whose step time grows fast gets a small one.
"""

import heapq
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import PagedCache, PagedSpec, Transformer
from apar_jax.speculative.tree import TokenTree


def path_value(path: Sequence[int], acc: np.ndarray) -> float:
  """Probability that every node on `path` is accepted (independence assumption)."""
  return float(np.prod([acc[d, r] for d, r in enumerate(path)])) if path else 1.0


def expected_accepted(paths: Sequence[Sequence[int]], acc: np.ndarray) -> float:
  """Expected tokens emitted per step by the tree of `paths` (bonus token included)."""
  return 1.0 + sum(path_value(p, acc) for p in paths)


def greedy_paths(acc: np.ndarray, num_nodes: int) -> list[tuple[int, ...]]:
  """The `num_nodes - 1` most valuable paths (best first; a parent always precedes its children)."""
  acc = np.asarray(acc, np.float64)
  if acc.ndim != 2 or acc.size == 0:
    raise ValueError(f'acceptance table must be [depth, topk], got shape {acc.shape}')
  if np.any(acc < 0) or np.any(acc > 1):
    raise ValueError('acceptance rates must lie in [0, 1]')
  depth, width = acc.shape
  frontier = [(-acc[0, r], (r,)) for r in range(width)]
  heapq.heapify(frontier)
  chosen: list[tuple[int, ...]] = []
  while frontier and len(chosen) < num_nodes - 1:
    neg, path = heapq.heappop(frontier)
    chosen.append(path)
    if len(path) < depth:
      for r in range(width):
        heapq.heappush(frontier, (neg * acc[len(path), r], path + (r,)))
  return chosen


def gain_curve(acc: np.ndarray, max_nodes: int) -> np.ndarray:
  """E(T) for T = 1 .. max_nodes (index T - 1): expected tokens per step of the best T-node tree."""
  paths = greedy_paths(acc, max_nodes)
  values = [path_value(p, np.asarray(acc)) for p in paths]
  curve = 1.0 + np.concatenate([[0.0], np.cumsum(values)])
  return np.pad(curve, (0, max_nodes - len(curve)), mode='edge')


def interpolate_times(step_times: Mapping[int, float], sizes: np.ndarray) -> np.ndarray:
  """Step time at every size, piecewise linear between measured sizes (flat beyond them)."""
  measured = sorted((int(t), float(s)) for t, s in step_times.items())
  if not measured or any(s <= 0 for _, s in measured):
    raise ValueError(f'need positive measured step times, got {dict(step_times)}')
  xs, ys = zip(*measured)
  return np.interp(sizes, xs, ys)


def choose_num_nodes(gains: np.ndarray, step_times: Mapping[int, float]) -> int:
  """The T (1 .. len(gains), within the measured range) maximising E(T) / time(T)."""
  top = min(len(gains), max(int(t) for t in step_times))
  sizes = np.arange(1, top + 1)
  rate = gains[:top] / interpolate_times(step_times, sizes)
  return int(sizes[int(np.argmax(rate))])


def build_auto_tree(acc: np.ndarray, step_times: Mapping[int, float],
                    max_nodes: int) -> tuple[TokenTree, dict[str, Any]]:
  """The tree with the best expected tokens per second; info = {'num_nodes', 'expected_accepted',
  'tokens_per_s_estimate'}."""
  if max_nodes < 1:
    raise ValueError(f'max_nodes must be >= 1, got {max_nodes}')
  gains = gain_curve(acc, max_nodes)
  t = choose_num_nodes(gains, step_times)
  tree = TokenTree.from_paths(greedy_paths(acc, t))
  step = float(interpolate_times(step_times, np.asarray([tree.num_nodes]))[0])
  return tree, {'num_nodes': tree.num_nodes, 'expected_accepted': float(gains[tree.num_nodes - 1]),
                'tokens_per_s_estimate': float(gains[tree.num_nodes - 1]) / step}


def measure_step_times(model: Transformer, params: Any, sizes: Sequence[int], *, slots: int = 1,
                       context: int = 256, page_size: int = 16, repeats: int = 5,
                       attention_impl: str = 'auto',
                       clock: Callable[[], float] = time.perf_counter) -> dict[int, float]:
  """Seconds of one verification forward with T query tokens per slot, for each T in sizes.

  Runs the model over a paged cache holding `context` committed tokens per slot with a tree-shaped
  (causal) block mask, as the engine's verification step does. Compile time is excluded; sizes are
  timed round-robin `repeats` times and the fastest run of each is kept (robust to other load).
  """
  cfg = model.cfg
  top = max(sizes)
  pages = -(-(context + top) // page_size)
  tables = (jnp.arange(slots)[:, None] * pages + jnp.arange(pages)[None]).astype(jnp.int32)
  caches = tuple(PagedCache.zeros(slots * pages, page_size, cfg.n_kv_heads, cfg.head_dim,
                                  jnp.dtype(cfg.dtype)) for _ in range(cfg.n_layers))
  lengths = jnp.full((slots,), context, jnp.int32)

  @jax.jit
  def forward(params, tokens, caches):
    t = tokens.shape[1]
    mask = jnp.broadcast_to(jnp.tril(jnp.ones((t, t), bool)), (slots, t, t))
    spec = PagedSpec(tables, lengths, mask, impl=attention_impl)
    positions = lengths[:, None] + jnp.arange(t)[None]
    return model.apply({'params': params}, tokens, positions, spec, caches).logits

  sizes = sorted(set(int(x) for x in sizes))
  inputs = {t: jnp.ones((slots, t), jnp.int32) for t in sizes}
  for t in sizes:
    forward(params, inputs[t], caches).block_until_ready()  # compile
  times = {t: [] for t in sizes}
  for _ in range(repeats):  # interleaved, so that load drift on a shared machine hits every size
    for t in sizes:
      t0 = clock()
      forward(params, inputs[t], caches).block_until_ready()
      times[t].append(clock() - t0)
  return {t: float(np.min(v)) for t, v in times.items()}  # the least disturbed run
