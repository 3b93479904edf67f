"""Lossless tree verification for sampling: multi-candidate speculative rejection sampling.

Walk down from the root. At a node with base distribution p (temperature, top-k, top-p applied as in
`apar_jax.sampling`), try its children in rank order. Draft tokens are deterministic (top-k of a head,
a prompt match), i.e. q = one-hot(x), so the general rule "accept x with probability min(1, p(x)/q(x));
on rejection p <- normalise(max(p - q, 0))" becomes: accept x with probability p(x); on rejection set
p(x) = 0 and renormalise, then try the next sibling. When a child is accepted, descend to it; when all
are rejected (or there are none), sample the next token from what is left of p. Every emitted token is
then distributed exactly as AR sampling would give it (tests/speculative/test_rejection_sampling.py).

Implemented with an unnormalised residual r and its mass m: accept x iff u * m < r(x), then r(x) <- 0,
m <- m - r(x) on rejection. Rows with temperature 0 use p = one-hot(argmax): the walk is then exactly
greedy acceptance.
"""

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.sampling import filter_top_k_top_p
from apar_jax.speculative.acceptance import Acceptance, emitted_tokens, is_stop
from apar_jax.speculative.tree import TokenTree


def base_probs(logits: jax.Array, temperature: jax.Array, top_k: jax.Array,
               top_p: jax.Array) -> jax.Array:
  """The distribution AR sampling draws from. logits [S, V], settings [S] -> probs [S, V] fp32.

  Temperature 0 rows give one-hot(argmax) (greedy). Filtering is skipped when no row asks for it.
  """
  logits = logits.astype(jnp.float32)
  safe_t = jnp.where(temperature > 0, temperature, 1.0)[:, None]
  scaled = logits / safe_t
  needs_filter = jnp.any(top_k > 0) | jnp.any(top_p < 1.0)
  scaled = jax.lax.cond(needs_filter, lambda x: filter_top_k_top_p(x, top_k, top_p), lambda x: x,
                        scaled)
  probs = jax.nn.softmax(scaled, axis=-1)
  greedy = jax.nn.one_hot(jnp.argmax(logits, axis=-1), logits.shape[-1], dtype=jnp.float32)
  return jnp.where((temperature > 0)[:, None], probs, greedy)


def _row_draws(key: jax.Array, level: int, width: int) -> tuple[jax.Array, jax.Array]:
  """Uniforms [width] for the children tried at `level`, and a key for the residual sample."""
  k = jax.random.fold_in(key, level)
  return jax.random.uniform(jax.random.fold_in(k, 0), (width,)), jax.random.fold_in(k, 1)


def rejection_accept(candidates: jax.Array, logits: jax.Array, tree: TokenTree, keys: jax.Array,
                     temperature: jax.Array, top_k: jax.Array, top_p: jax.Array,
                     stop_ids: Sequence[int] = ()) -> Acceptance:
  """Lossless acceptance of the tree's candidates under the base model's sampling distribution.

  candidates [S, T] int32 (-1 = none), logits [S, T, V], keys [S] PRNG keys (typed or raw), settings
  [S] as in `apar_jax.sampling.sample_logits` -> Acceptance (same layout as `greedy_accept`).
  """
  s, t, vocab = logits.shape
  depth = tree.max_depth
  children = jnp.asarray(tree.children)  # [T, C]
  width = children.shape[1]
  rows = jnp.arange(s)
  stops = is_stop(candidates, stop_ids)  # [S, T]

  cur = jnp.zeros((s,), jnp.int32)  # node the walk stands on
  walking = jnp.ones((s,), bool)
  num_nodes = jnp.ones((s,), jnp.int32)
  nodes = jnp.full((s, depth + 1), -1, jnp.int32).at[:, 0].set(0)
  next_token = jnp.zeros((s,), jnp.int32)
  for level in range(depth + 1):  # the last level has no children: it only samples the bonus
    node_logits = logits[rows, cur]  # [S, V]
    r = base_probs(node_logits, temperature, top_k, top_p)  # residual (unnormalised)
    mass = jnp.ones((s,), jnp.float32)
    uniforms, sample_keys = jax.vmap(lambda k: _row_draws(k, level, width))(keys)  # [S, C], [S]
    kids = children[cur]  # [S, C]
    chosen = jnp.full((s,), -1, jnp.int32)
    for c in range(width):
      child = kids[:, c]
      x = jnp.take_along_axis(candidates, jnp.maximum(child, 0)[:, None], axis=1)[:, 0]
      trying = walking & (chosen < 0) & (child >= 0) & (x >= 0)
      xi = jnp.maximum(x, 0)
      rx = jnp.where(trying, r[rows, xi], 0.0)
      accept = trying & (uniforms[:, c] * mass < rx)
      reject = trying & ~accept
      r = r.at[rows, xi].multiply(jnp.where(reject, 0.0, 1.0))
      mass = jnp.where(reject, mass - rx, mass)
      chosen = jnp.where(accept, child, chosen)
    accepted = walking & (chosen >= 0)
    chosen_tok = jnp.take_along_axis(candidates, jnp.maximum(chosen, 0)[:, None], axis=1)[:, 0]
    hit_stop = accepted & jnp.take_along_axis(stops, jnp.maximum(chosen, 0)[:, None], axis=1)[:, 0]
    descend = accepted & ~hit_stop
    resampled = jax.vmap(lambda k, p: jax.random.categorical(k, jnp.log(p)))(
        sample_keys, jnp.maximum(r, 0.0)).astype(jnp.int32)
    ends_here = walking & ~descend
    next_token = jnp.where(ends_here, jnp.where(hit_stop, chosen_tok, resampled), next_token)
    if level < depth:
      nodes = nodes.at[rows, jnp.minimum(num_nodes, depth)].set(
          jnp.where(descend, chosen, nodes[rows, jnp.minimum(num_nodes, depth)]))
    num_nodes = num_nodes + descend
    cur = jnp.where(descend, chosen, cur)
    walking = descend
  return Acceptance(nodes, num_nodes, next_token,
                    emitted_tokens(nodes, num_nodes, next_token, candidates))
