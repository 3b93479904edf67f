"""The acceptance a drafter reaches on the running requests, per tree (level, rank).

The tree builder (`auto_tree`, `tree_plan`) values a node by the product of `acc[level, rank]` along
its path: the chance that the rank-r guess for the level-l position is right, given that its parent
was. Medusa and Hidden Transfer measure that table on held-out rows when they are trained; prompt
lookup and token recycling have no training, so the engine counts it while it decodes:

- a node is *tried* when its parent is on the step's committed path and it has a candidate (-1 = no
  guess: an empty table entry, no context match);
- it is *kept* when it is committed too.

`tally [2, D, K]` holds (tried, kept) per (level, rank), summed over live rows and steps; the rate is
kept / tried. Device side: `count`; host side: `rates`, `describe`, and `write` / `read` of a JSON
file the tree planner takes back (`config.speculative.acceptance_file`).
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.speculative.tree import TokenTree


def empty(levels: int, ranks: int) -> jax.Array:
  """[2, levels, ranks] int32 zeros."""
  return jnp.zeros((2, levels, ranks), jnp.int32)


def count(tally: jax.Array, tree: TokenTree, cand: jax.Array, nodes: jax.Array,
          num_committed: jax.Array, live: jax.Array) -> jax.Array:
  """tally [2, D, K] plus one step: cand [S, T] node tokens (-1 = none), nodes [S, A] committed node
  ids root first (-1 padded), num_committed [S] how many of them count (the emitted ones), live [S]."""
  s, t = cand.shape
  a = nodes.shape[1]
  counted = (jnp.arange(a)[None] < num_committed[:, None]) & (nodes >= 0) & live[:, None]
  committed = jnp.zeros((s, t), bool).at[jnp.arange(s)[:, None], jnp.maximum(nodes, 0)].max(
      counted)  # [S, T]
  parent = np.maximum(tree.parent, 0)
  drafted = jnp.asarray(tree.parent >= 0)[None]  # [1, T]: not the root
  tried = drafted & committed[:, parent] & (cand >= 0)  # [S, T]
  kept = tried & committed
  level = np.maximum(tree.head, 0)
  rank = np.maximum(tree.rank, 0)
  both = jnp.stack([tried.sum(0), kept.sum(0)]).astype(jnp.int32)  # [2, T]
  return tally.at[:, level, rank].add(both, mode='drop')


def rates(tally: np.ndarray) -> np.ndarray:
  """[2, D, K] (tried, kept) -> [D, K] kept / tried (NaN where never tried)."""
  tried, kept = np.asarray(tally, np.float64)
  with np.errstate(invalid='ignore', divide='ignore'):
    return np.where(tried > 0, kept / tried, np.nan)


def describe(tally: np.ndarray) -> str:
  """A Markdown table: one row per level, `rate (tried)` per rank."""
  tally = np.asarray(tally)
  rate = rates(tally)
  levels, ranks = rate.shape
  lines = ['| level | ' + ' | '.join(f'rank {r}' for r in range(ranks)) + ' |',
           '|---|' + '---:|' * ranks]
  for lv in range(levels):
    cells = ['-' if tally[0, lv, r] == 0 else f'{rate[lv, r]:.3f} ({int(tally[0, lv, r])})'
             for r in range(ranks)]
    lines.append(f'| {lv + 1} | ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def write(path: str, tallies: dict[str, np.ndarray], source: str = '') -> None:
  """Writes {drafter kind: tally [2, D, K]} as JSON (`read` gives the rates back)."""
  doc = {'source': source, 'drafters': {
      kind: {'tried': np.asarray(t[0]).tolist(), 'kept': np.asarray(t[1]).tolist()}
      for kind, t in tallies.items()}}
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(doc, f, indent=1)


def read(path: str, kind: str) -> np.ndarray | None:
  """[D, K] measured rates of drafter `kind` from a `write` file (NaN = never tried); None if the
  file has no table for it."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'no acceptance file {path!r}: write one with `python -m '
                            f'apar_jax.bench.spec_modes --acceptance_out={path}`, or set '
                            f'--config.speculative.acceptance_file=""')
  with open(path, encoding='utf-8') as f:
    try:
      entry = json.load(f).get('drafters', {}).get(kind)
    except (json.JSONDecodeError, AttributeError) as e:
      raise ValueError(f'{path!r} is not an acceptance file written by `spec_modes '
                       f'--acceptance_out` ({e})') from e
  if entry is None:
    return None
  return rates(np.stack([np.asarray(entry['tried']), np.asarray(entry['kept'])]))


def overlay(prior: np.ndarray, measured: np.ndarray) -> np.ndarray:
  """prior [D, K] with every entry `measured` [D', K'] has (not NaN) put in its place."""
  out = np.array(prior, np.float64)
  d, k = min(out.shape[0], measured.shape[0]), min(out.shape[1], measured.shape[1])
  window = measured[:d, :k]
  out[:d, :k] = np.where(np.isnan(window), out[:d, :k], window)
  return out
