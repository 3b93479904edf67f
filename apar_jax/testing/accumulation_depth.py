"""The accumulation depth of the decoder's computations: the `terms` of `rounding.relative_bound`.

Along the longest path from the inputs to a value, count every rounded operation: a sum over k terms
counts k, an elementwise operation 1. Per layer: the two RMSNorms (d each), the q/k/v projection (d),
RoPE (2), the scores (head_dim), the softmax normaliser and the weighted sum of values (keys each),
the output projection (heads * head_dim), the gated MLP (d, then ffn) and two residual adds. A
backward pass runs the same chain with each matmul contracting over its other side, and a weight
gradient then sums over the tokens that used the weight.
"""

import ml_collections


def forward_terms(model: ml_collections.ConfigDict, keys: int) -> int:
  """Depth of the logits of one forward whose queries attend to at most `keys` positions."""
  d, hd, heads = int(model.d_model), int(model.head_dim), int(model.n_heads)
  layer = 2 * d + d + 2 + hd + 2 * keys + heads * hd + d + int(model.ffn_dim) + 2
  return int(model.n_layers) * layer + d + d  # final norm, LM head


def backward_terms(model: ml_collections.ConfigDict, keys: int, *, loss_terms: int,
                   grad_tokens: int) -> int:
  """Depth of a weight gradient: the forward, the loss, the backward chain, the sum over tokens.

  `loss_terms`: the loss's own sums (mean NLL: vocab_size for the log-softmax normaliser plus the
  number of targets); `grad_tokens`: the positions whose contributions a weight gradient sums.
  """
  d, hd = int(model.d_model), int(model.head_dim)
  heads, kv_heads = int(model.n_heads), int(model.n_kv_heads)
  layer = (2 * d + (heads + 2 * kv_heads) * hd + 2 + hd + 2 * keys + d + 2 * int(model.ffn_dim)
           + d + 2)
  back = int(model.vocab_size) + d + int(model.n_layers) * layer  # LM head, final norm, layers
  return forward_terms(model, keys) + loss_terms + back + grad_tokens
