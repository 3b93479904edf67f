"""Token Recycling (arXiv 2408.08696): a training-free tree drafter over an adjacency table.

`table [V, k] int32` holds, for every token, the k tokens the model ranked highest right after it the
last time that token was fed (-1 = never seen; verification never accepts -1). Every forward the
engine already runs refreshes the rows of the tokens it fed (`refresh`), and the table is kept across
requests. A draft fills a static `TokenTree` by walking the table from each slot's last token
(`fill`): node n's token is `table[token(parent n), rank n]`, one gather per tree level.

`fill` can first take a context match (prompt lookup's chain, `prompt_lookup.lookup`) for the tree's
spine, the rank-0 path (0,), (0, 0), ...: where the context continues the text, its tokens take the
spine and the recycled candidates move one rank down among the spine node's siblings, so a small tree
holds both sources. `source [S, T]` says where each node's token came from, so the engine can report
each source's share of the accepted tokens.

Static shapes, pure jnp; the slow obviously-correct version is in tests/speculative.
"""

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.speculative.top_tokens import top_tokens
from apar_jax.speculative.tree import TokenTree, TreeError

ROOT, CONTEXT, TABLE = 0, 1, 2  # `source` values


def empty_table(vocab: int, k: int) -> jax.Array:
  """[V, k] int32 of -1: nothing recycled yet."""
  if vocab < 1 or k < 1:
    raise ValueError(f'need vocab >= 1 and k >= 1, got {vocab}, {k}')
  return jnp.full((vocab, k), -1, jnp.int32)


def refresh(table: jax.Array, fed: jax.Array, next_logits: jax.Array,
            valid: jax.Array) -> jax.Array:
  """The table with row `fed[i]` replaced by the top-k tokens of `next_logits[i]` for every valid i.

  fed [N] int32 (tokens fed to a forward), next_logits [N, V] (the model's logits at their
  positions), valid [N] bool. A token fed twice keeps the later row (index order), so the result never
  depends on how a backend orders duplicate scatter writes."""
  table = jnp.asarray(table)
  n = fed.shape[0]
  vocab, k = table.shape
  later_same = (fed[:, None] == fed[None, :]) & valid[None, :] & (
      jnp.arange(n)[None, :] > jnp.arange(n)[:, None])  # [N, N]: j > i writes the same row
  write = valid & ~jnp.any(later_same, axis=1) & (fed >= 0) & (fed < vocab)
  rows = top_tokens(next_logits, k)  # [N, k]
  return table.at[jnp.where(write, fed, vocab)].set(rows, mode='drop')


def _spine(tree: TokenTree) -> np.ndarray:
  """[T] bool: nodes on the rank-0 path (0,), (0, 0), ... (not the root)."""
  on = np.zeros((tree.num_nodes,), bool)
  for n in range(1, tree.num_nodes):
    on[n] = tree.rank[n] == 0 and (tree.parent[n] == 0 or on[tree.parent[n]])
  return on


def fill(table: jax.Array, root: jax.Array, tree: TokenTree,
         context: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """(tokens [S, T] int32, source [S, T] int32) of `tree` for every slot.

  table [V, k]; root [S] (each slot's last token: node 0); context [S, L] int32 or None: a drafted
  chain (-1 = no token) for the spine, used from the first level while it lasts. Node n at depth d
  takes, in this order: the context token d - 1 if n is on the spine and every spine level above came
  from the context; else the table row of its parent's token at rank `rank[n]`, one rank lower
  (`rank[n] - 1`) when its parent's spine child came from the context."""
  k = table.shape[1]
  if tree.topk_needed() > k + (context is not None):
    raise TreeError(f'the tree uses rank {tree.topk_needed() - 1} but the recycling table keeps '
                    f'{k} candidates per token: use a tree of width <= {k} or a wider table')
  s, t = root.shape[0], tree.num_nodes
  spine = _spine(tree)
  tokens = jnp.zeros((s, t), jnp.int32).at[:, 0].set(root.astype(jnp.int32))
  source = jnp.full((s, t), ROOT, jnp.int32)
  chain = jnp.ones((s,), bool)  # the spine came from the context down to the previous level
  for d in range(1, tree.max_depth + 1):
    nodes = np.nonzero(tree.depth == d)[0]  # static
    parents = tree.parent[nodes]
    if context is not None and d <= context.shape[1]:
      chain = chain & (context[:, d - 1] >= 0)  # [S]
    else:
      chain = jnp.zeros((s,), bool)
    from_ctx = chain[:, None] & spine[nodes][None, :]  # [S, n_d]
    spine_here = bool(np.any(spine[nodes]))  # the tree has the spine node of this level
    shifted = chain[:, None] & (spine_here & (spine[parents] | (parents == 0)) & (
        tree.rank[nodes] > 0))[None, :]  # siblings of a context spine node
    ranks = tree.rank[nodes][None, :] - shifted.astype(jnp.int32)  # [S, n_d]
    parent_tok = tokens[:, parents]  # [S, n_d]; -1 (nothing drafted) reads no row
    rows = jnp.take(table, jnp.where(parent_tok >= 0, parent_tok, table.shape[0]), axis=0,
                    mode='fill', fill_value=-1)  # [S, n_d, k]
    recycled = jnp.take_along_axis(rows, jnp.clip(ranks, 0, k - 1)[..., None], axis=2)[..., 0]
    recycled = jnp.where(ranks < k, recycled, -1)
    ctx_tok = context[:, d - 1:d] if context is not None and d <= context.shape[1] else -1
    tokens = tokens.at[:, nodes].set(jnp.where(from_ctx, ctx_tok, recycled))
    source = source.at[:, nodes].set(jnp.where(from_ctx, CONTEXT, TABLE))
  return tokens, source


def accepted_by_source(source: jax.Array, accepted_nodes: jax.Array,
                       num_accepted: jax.Array) -> jax.Array:
  """[2] int32: drafted tokens accepted from the context and from the table.

  source [S, T] (`fill`); accepted_nodes [S, A] node indices of each slot's accepted path, root first;
  num_accepted [S] how many of them count (the root included)."""
  a = accepted_nodes.shape[1]
  taken = jnp.take_along_axis(source, jnp.clip(accepted_nodes, 0, source.shape[1] - 1), axis=1)
  counted = (jnp.arange(a)[None, :] < num_accepted[:, None]) & (jnp.arange(a)[None, :] > 0)
  return jnp.stack([jnp.sum(counted & (taken == CONTEXT)),
                    jnp.sum(counted & (taken == TABLE))]).astype(jnp.int32)
