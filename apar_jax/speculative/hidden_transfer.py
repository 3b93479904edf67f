"""Hidden Transfer (arXiv 2404.12022): pseudo hidden states of future tokens from an inner layer.

The hidden state of the last token (position n) entering layer l is mapped by k learned linear maps
(one d x d map + bias per future offset, identity-initialised) to k pseudo states placed at positions
n+1 .. n+k. They run through layers l .. L-1, attending to the context and causally to each other;
the final norm and the base LM head turn pseudo j (j = 1..k) into logits for token n + j + 1. So pseudo
j drafts tree depth j, like Medusa head j - 1.

Two ways to get the draft for the next step, identical in value (tested):
  * `propose_extra_pass`: after acceptance, one partial forward (layers l .. L-1) over k pseudo tokens
    that attend to the committed context. Costs (L - l) / L of a decode step in weight reads.
  * `verify_with_transfer`: inside the verification forward itself; every tree node gets its k pseudo
    tokens in the upper layers (T + T*k query rows there), and the step keeps those of the last
    committed node. One base forward per step.

Params: {'kernel': [k, d, d], 'bias': [k, d]}.
"""

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import Transformer
from apar_jax.speculative import layer_runner
from apar_jax.speculative.top_tokens import top_tokens
from apar_jax.speculative.tree import TokenTree


def init_hidden_transfer(num_pseudo: int, d_model: int, param_dtype: Any = jnp.float32) -> Any:
  """Identity maps, zero biases: pseudo j starts as a copy of the last token's layer-l state."""
  if num_pseudo < 1:
    raise ValueError(f'Hidden Transfer needs num_pseudo >= 1, got {num_pseudo}')
  eye = jnp.broadcast_to(jnp.eye(d_model, dtype=param_dtype), (num_pseudo, d_model, d_model))
  return {'kernel': jnp.array(eye), 'bias': jnp.zeros((num_pseudo, d_model), param_dtype)}


def num_pseudo_of(params: Any) -> int:
  return int(params['kernel'].shape[0])


def pseudo_states(params: Any, h: jax.Array) -> jax.Array:
  """h [..., d] (layer-l input of the last token) -> [..., k, d]."""
  w = params['kernel'].astype(h.dtype)
  return (jnp.einsum('...d,kde->...ke', h, w) + params['bias'].astype(h.dtype)).astype(h.dtype)


def pseudo_logits_from_upper(base_params: Any, cfg: Any, x: jax.Array) -> jax.Array:
  """Upper-layer output [..., d] -> logits [..., V] (final norm + base LM head)."""
  return layer_runner.lm_logits(base_params, cfg, layer_runner.final_norm(base_params, cfg, x))


def propose_extra_pass(base_params: Any, cfg: Any, params: Any, h_last: jax.Array,
                       lengths: jax.Array, spec: Any, caches: Sequence[Any], transfer_layer: int,
                       topk: int) -> tuple[jax.Array, tuple]:
  """Draft after acceptance: h_last [S, d] is the layer-l input of the last committed token (at
  position lengths - 1); `spec` is a causal block spec for k queries at `lengths` (e.g.
  `PagedSpec(page_tables, lengths)`); it writes pseudo K/V at lengths .. lengths + k - 1 of layers
  l .. L-1 (the stale tail: the next step overwrites it). Returns (tokens [S, k, topk], caches).
  """
  k = num_pseudo_of(params)
  x = pseudo_states(params, h_last)  # [S, k, d]
  positions = (lengths[:, None] + jnp.arange(k)[None]).astype(jnp.int32)
  x, caches = layer_runner.run_layers(base_params, cfg, x, positions, spec, caches, transfer_layer,
                                      cfg.n_layers)
  return top_tokens(pseudo_logits_from_upper(base_params, cfg, x), topk), caches


def transfer_block(tree: TokenTree, k: int) -> tuple[np.ndarray, np.ndarray]:
  """Mask [Q', Q'] and position offsets [Q'] of the tree plus k pseudo tokens per node (Q' = T + T*k).

  Row T + i*k + j is pseudo j+1 of node i, at offset depth[i] + 1 + j; it sees node i and its
  ancestors, and pseudo 1..j+1 of node i. Tree rows see only the tree (as in plain verification).
  """
  t = tree.num_nodes
  q = t + t * k
  mask = np.zeros((q, q), bool)
  mask[:t, :t] = tree.mask
  offsets = np.zeros((q,), np.int32)
  offsets[:t] = tree.depth
  for i in range(t):
    for j in range(k):
      row = t + i * k + j
      mask[row, :t] = tree.mask[i]
      mask[row, t + i * k: row + 1] = True
      offsets[row] = tree.depth[i] + 1 + j
  return mask, offsets


def verify_with_transfer_states(model: Transformer, base_params: Any, params: Any,
                                candidates: jax.Array, lengths: jax.Array, tree: TokenTree,
                                make_spec: Callable[[jax.Array], Any], caches: Sequence[Any],
                                transfer_layer: int) -> tuple[jax.Array, jax.Array, jax.Array, tuple]:
  """The verification forward with Hidden Transfer from every node, pseudo tokens left as states.

  candidates [S, T] at positions lengths + depth; `make_spec(block_mask [S, Q, Q])` builds the
  attention spec for a block of Q queries written at `lengths` (e.g. a PagedSpec). Layers < l see
  the T tree tokens, layers >= l see T + T*k rows. Returns (logits [S, T, V], hidden [S, T, d] after
  the final norm, pseudo states [S, T, k, d] after the final norm, caches): the engine turns only the
  last committed node's pseudo states into draft tokens (k LM-head rows per slot, not T*k).
  """
  cfg = model.cfg
  s, t = candidates.shape
  k = num_pseudo_of(params)
  positions = tree.positions(lengths)  # [S, T]
  x = layer_runner.embed(base_params, cfg, candidates)
  x, caches = layer_runner.run_layers(base_params, cfg, x, positions, make_spec(
      tree.block_mask(s)), caches, 0, transfer_layer)
  pseudo = pseudo_states(params, x).reshape(s, t * k, -1)  # [S, T*k, d], node-major
  mask, offsets = transfer_block(tree, k)
  x = jnp.concatenate([x, pseudo], axis=1)  # [S, Q', d]
  upper_pos = (lengths[:, None] + jnp.asarray(offsets)[None]).astype(jnp.int32)
  spec = make_spec(jnp.broadcast_to(jnp.asarray(mask), (s,) + mask.shape))
  x, caches = layer_runner.run_layers(base_params, cfg, x, upper_pos, spec, caches, transfer_layer,
                                      cfg.n_layers)
  hidden = layer_runner.final_norm(base_params, cfg, x)
  logits = layer_runner.lm_logits(base_params, cfg, hidden[:, :t])
  return logits, hidden[:, :t], hidden[:, t:].reshape(s, t, k, -1), caches


def verify_with_transfer(model: Transformer, base_params: Any, params: Any, candidates: jax.Array,
                         lengths: jax.Array, tree: TokenTree, make_spec: Callable[[jax.Array], Any],
                         caches: Sequence[Any], transfer_layer: int, topk: int
                         ) -> tuple[jax.Array, jax.Array, jax.Array, tuple]:
  """`verify_with_transfer_states` with every node's pseudo tokens drafted: (logits [S, T, V],
  hidden [S, T, d], pseudo draft tokens [S, T, k, topk], caches)."""
  logits, hidden, pseudo, caches = verify_with_transfer_states(
      model, base_params, params, candidates, lengths, tree, make_spec, caches, transfer_layer)
  draft = top_tokens(layer_runner.lm_logits(base_params, model.cfg, pseudo), topk)
  return logits, hidden, draft, caches
