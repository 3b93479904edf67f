"""Which drafted tokens a verification step keeps: greedy and typical (lossy) acceptance.

Every function is batched over S slots with static shapes. Inputs: candidate tokens [S, T] of the
tree's nodes (node 0 = the root, the token fed at the slot's next position; -1 = no candidate) and the
base model's logits [S, T, V] at every node (the distribution of the token after that node).

Result (`Acceptance`): the step emits `num_nodes` tokens = the candidates of the committed draft nodes
`nodes[1:num_nodes]`, then `next_token`. The committed nodes (root first) are those whose K/V the slot
keeps; `next_token` is the token fed at the next step (the bonus). A stop token (EOS, `[Fork]`) is
always the last emitted token of a step: acceptance halts at an accepted stop node, which is then
emitted as `next_token` and is not committed, exactly as if AR had just chosen it (so the engine
finishes or forks the slot as in AR/APAR mode, and the stop token is fed - or not - like any chosen
token).
"""

from typing import Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.speculative.tree import TokenTree


@flax.struct.dataclass
class Acceptance:
  nodes: jax.Array  # [S, D + 1] int32: committed nodes, root first, padded with -1
  num_nodes: jax.Array  # [S] int32 in [1, D + 1]: committed nodes = tokens emitted this step
  next_token: jax.Array  # [S] int32: last emitted token (bonus / residual sample / accepted stop)
  tokens: jax.Array  # [S, D + 1] int32: emitted tokens, padded with -1

  @property
  def num_emitted(self) -> jax.Array:
    """[S] tokens emitted this step (= committed nodes: the root's successor chain + next_token)."""
    return self.num_nodes


def is_stop(tokens: jax.Array, stop_ids: Sequence[int]) -> jax.Array:
  """tokens [...] -> bool [...]: the token is one of `stop_ids` (EOS, `[Fork]`, ...)."""
  if not stop_ids:
    return jnp.zeros(tokens.shape, bool)
  return jnp.isin(tokens, jnp.asarray(tuple(int(i) for i in stop_ids), jnp.int32))


def _gather_nodes(x: jax.Array, nodes: jax.Array) -> jax.Array:
  """x [S, T], nodes [S, ...] (may be -1) -> x[s, nodes] with -1 read as node 0."""
  flat = jnp.maximum(nodes, 0).reshape(nodes.shape[0], -1)
  return jnp.take_along_axis(x, flat, axis=1).reshape(nodes.shape)


def longest_accepted_path(ok: jax.Array, candidates: jax.Array, tree: TokenTree,
                          stop_ids: Sequence[int]) -> tuple[jax.Array, jax.Array, jax.Array]:
  """The longest root path whose nodes are all `ok`, halted at the first stop-token node.

  ok [S, T] bool: the node's candidate is acceptable given its parent (ignored for the root).
  Returns (path [S, D + 1] node ids of the best leaf path (-1 padded), walked [S] nodes accepted on
  it, root included, ends_in_stop [S] bool: the last accepted node is a stop token).
  """
  s = ok.shape[0]
  retrieve = jnp.asarray(tree.retrieve)  # [P, D + 1]
  valid = retrieve >= 0
  paths = jnp.broadcast_to(retrieve[None], (s,) + retrieve.shape)  # [S, P, D + 1]
  ok_path = _gather_nodes(ok, paths) & valid[None]
  ok_path = ok_path.at[:, :, 0].set(True)
  stop_path = _gather_nodes(is_stop(candidates, stop_ids), paths) & valid[None]
  stop_path = stop_path.at[:, :, 0].set(False)  # the root (e.g. a fed `[Fork]`) never halts
  # A node can be walked to only if no earlier node on the path was an (accepted) stop token.
  stop_before = jnp.cumsum(stop_path, axis=-1) - stop_path > 0
  run = jnp.cumprod(ok_path & ~stop_before, axis=-1)  # [S, P, D + 1]
  lengths = jnp.sum(run, axis=-1)  # [S, P] >= 1
  best = jnp.argmax(lengths, axis=-1)  # [S]
  walked = jnp.max(lengths, axis=-1).astype(jnp.int32)
  path = retrieve[best]  # [S, D + 1]
  last = jnp.take_along_axis(path, (walked - 1)[:, None], axis=1)[:, 0]
  ends_in_stop = (walked > 1) & _gather_nodes(is_stop(candidates, stop_ids), last[:, None])[:, 0]
  return path, walked, ends_in_stop


def finish(path: jax.Array, walked: jax.Array, ends_in_stop: jax.Array, candidates: jax.Array,
           bonus_at: jax.Array) -> Acceptance:
  """Builds the result from an accepted path; bonus_at [S, T] = the token chosen after each node."""
  width = path.shape[1]
  num_nodes = (walked - ends_in_stop).astype(jnp.int32)  # an accepted stop node is not committed
  col = jnp.arange(width)[None]
  nodes = jnp.where(col < num_nodes[:, None], path, -1)
  last_committed = jnp.take_along_axis(path, (num_nodes - 1)[:, None], axis=1)[:, 0]
  stop_node = jnp.take_along_axis(path, (walked - 1)[:, None], axis=1)[:, 0]
  next_token = jnp.where(ends_in_stop, _gather_nodes(candidates, stop_node[:, None])[:, 0],
                         _gather_nodes(bonus_at, last_committed[:, None])[:, 0]).astype(jnp.int32)
  return Acceptance(nodes, num_nodes, next_token, emitted_tokens(nodes, num_nodes, next_token,
                                                                  candidates))


def emitted_tokens(nodes: jax.Array, num_nodes: jax.Array, next_token: jax.Array,
                   candidates: jax.Array) -> jax.Array:
  """[S, D + 1]: candidates of nodes[1:num_nodes], then next_token, then -1."""
  width = nodes.shape[1]
  col = jnp.arange(width)[None]
  drafted = _gather_nodes(candidates, jnp.roll(nodes, -1, axis=1))  # token of nodes[j + 1]
  out = jnp.where(col < num_nodes[:, None] - 1, drafted, -1)
  return jnp.where(col == num_nodes[:, None] - 1, next_token[:, None], out).astype(jnp.int32)


def greedy_accept(candidates: jax.Array, logits: jax.Array, tree: TokenTree,
                  stop_ids: Sequence[int] = ()) -> Acceptance:
  """Greedy verification: accept a child while it equals the argmax at its parent; longest path;
  then the argmax after the last committed node. Token-identical to greedy AR.

  candidates [S, T] int32, logits [S, T, V] -> Acceptance.
  """
  target = jnp.argmax(logits, axis=-1).astype(jnp.int32)  # [S, T]
  parent = np.maximum(tree.parent, 0)
  ok = candidates == target[:, parent]
  path, walked, ends_in_stop = longest_accepted_path(ok, candidates, tree, stop_ids)
  return finish(path, walked, ends_in_stop, candidates, target)


def typical_accept(candidates: jax.Array, logits: jax.Array, tree: TokenTree, keys: jax.Array,
                   temperature: jax.Array, stop_ids: Sequence[int] = (), *,
                   posterior_threshold: float = 0.09, posterior_alpha: float = 0.3) -> Acceptance:
  """Medusa's typical acceptance. LOSSY: the output distribution differs from the base model's.

  A child x is accepted if p(x) > min(posterior_threshold, posterior_alpha * exp(-H(p))) with p the
  base distribution at its parent (at the row's temperature); the longest such path is kept and the
  next token is sampled from p after the last committed node. Only temperature shapes p (no top-k /
  top-p). Rows with temperature 0 are greedy (exactly `greedy_accept`). keys [S] PRNG keys;
  temperature [S].
  """
  safe_t = jnp.where(temperature > 0, temperature, 1.0)[:, None, None]
  logp = jax.nn.log_softmax(logits / safe_t, axis=-1)  # [S, T, V]
  probs = jnp.exp(logp)
  entropy = -jnp.sum(probs * logp, axis=-1)  # [S, T]
  threshold = jnp.minimum(posterior_threshold, posterior_alpha * jnp.exp(-entropy))
  parent = np.maximum(tree.parent, 0)
  p_cand = jnp.take_along_axis(probs[:, parent], jnp.maximum(candidates, 0)[..., None],
                               axis=-1)[..., 0]  # [S, T]: p at the parent of the node's candidate
  target = jnp.argmax(logits, axis=-1).astype(jnp.int32)
  greedy_row = (temperature <= 0)[:, None]
  ok = jnp.where(greedy_row, candidates == target[:, parent],
                 (candidates >= 0) & (p_cand > threshold[:, parent]))
  path, walked, ends_in_stop = longest_accepted_path(ok, candidates, tree, stop_ids)
  sampled = jax.vmap(lambda k, lp: jax.random.categorical(k, lp, axis=-1))(keys, logp)  # [S, T]
  bonus_at = jnp.where(greedy_row, target, sampled.astype(jnp.int32))
  return finish(path, walked, ends_in_stop, candidates, bonus_at)
