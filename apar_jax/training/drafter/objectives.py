"""What a drafter is trained to do, on top of the frozen base model's features.

Both drafters predict, from the token at position t, the tokens at t + 2 .. t + 1 + K (the base
model itself predicts t + 1). Targets are the self-distilled answer tokens (the base model's own
greedy output), so a correct guess is exactly a guess the verification step accepts.
  * Medusa: head i on the final hidden state h_t.
  * Hidden Transfer: pseudo tokens from the layer-l state of chosen anchor positions t, run through
    layers l .. L-1 next to the real row (which they attend to, up to t) - `ht_pseudo_logits`.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from apar_jax.model import dense_attention
from apar_jax.speculative import hidden_transfer, medusa
from apar_jax.speculative.layer_runner import final_norm, lm_logits, run_layers


@flax.struct.dataclass
class MaskSpec:
  """Attention over the block only, with an explicit mask [B, Q, Q] (no cache)."""
  mask: jax.Array

  def attend(self, q, k, v, cache, scale):
    return dense_attention(q, k, v, self.mask, scale), cache


def future_targets(tokens: np.ndarray, answer: np.ndarray, num_heads: int
                   ) -> tuple[np.ndarray, np.ndarray]:
  """labels [N, L, K] = tokens[t + 2 + i], mask [N, L, K]: that token exists and is an answer token."""
  n, length = tokens.shape
  labels = np.zeros((n, length, num_heads), np.int32)
  mask = np.zeros((n, length, num_heads), bool)
  for i in range(num_heads):
    shift = 2 + i
    labels[:, :length - shift, i] = tokens[:, shift:]
    mask[:, :length - shift, i] = answer[:, shift:]
  return labels, mask


def masked_cross_entropy(logits: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
  """Mean CE over masked entries. logits [..., V], labels/mask [...]."""
  ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1)


def medusa_loss(dparams: Any, base_params: Any, cfg: Any, hidden: jax.Array, labels: jax.Array,
                mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """hidden [B, d], labels/mask [B, K] -> (loss, top-1 accuracy per head [K])."""
  logits = lm_logits(base_params, cfg, medusa.head_states(dparams, hidden))  # [B, K, V]
  hit = (jnp.argmax(logits, -1) == labels) & mask
  acc = jnp.sum(hit, 0) / jnp.maximum(jnp.sum(mask, 0), 1)
  return masked_cross_entropy(logits, labels, mask), acc


def ht_block(valid: jax.Array, anchors: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """Mask [B, Q, Q] and positions [B, Q] of a real row (L tokens) plus k pseudo tokens per anchor
  (Q = L + A*k; pseudo j of anchor a at position a + 1 + j, seeing the row up to a and pseudo
  1..j of its own anchor). valid [B, L] bool, anchors [B, A] int32."""
  b, length = valid.shape
  a = anchors.shape[1]
  key_pos = jnp.arange(length)
  real = jnp.tril(jnp.ones((length, length), bool))[None] & valid[:, None, :]  # [B, L, L]
  real = jnp.concatenate([real, jnp.zeros((b, length, a * k), bool)], axis=2)
  sees_row = (key_pos[None, None] <= anchors[:, :, None]) & valid[:, None, :]  # [B, A, L]
  sees_row = jnp.repeat(sees_row, k, axis=1)  # [B, A*k, L]
  group = np.repeat(np.arange(a), k)
  step = np.tile(np.arange(k), a)
  own = (group[:, None] == group[None, :]) & (step[None, :] <= step[:, None])  # [A*k, A*k]
  pseudo = jnp.concatenate([sees_row, jnp.broadcast_to(jnp.asarray(own), (b, a * k, a * k))],
                           axis=2)
  mask = jnp.concatenate([real, pseudo], axis=1)
  positions = jnp.concatenate([jnp.broadcast_to(key_pos, (b, length)),
                               (anchors[:, :, None] + 1 + jnp.arange(k)[None, None]).reshape(b, -1)],
                              axis=1)
  return mask, positions.astype(jnp.int32)


def ht_pseudo_logits(dparams: Any, base_params: Any, cfg: Any, h_l: jax.Array, valid: jax.Array,
                     anchors: jax.Array, transfer_layer: int) -> jax.Array:
  """h_l [B, L, d] (layer-l input of the real row), anchors [B, A] -> logits [B, A, k, V]."""
  b, length, _ = h_l.shape
  k = hidden_transfer.num_pseudo_of(dparams)
  a = anchors.shape[1]
  at_anchor = jnp.take_along_axis(h_l, anchors[..., None], axis=1)  # [B, A, d]
  pseudo = hidden_transfer.pseudo_states(dparams, at_anchor).reshape(b, a * k, -1)
  mask, positions = ht_block(valid, anchors, k)
  x = jnp.concatenate([jax.lax.stop_gradient(h_l), pseudo], axis=1)
  x, _ = run_layers(base_params, cfg, x, positions, MaskSpec(mask), None, transfer_layer,
                    cfg.n_layers)
  logits = lm_logits(base_params, cfg, final_norm(base_params, cfg, x[:, length:]))
  return logits.reshape(b, a, k, -1)


def ht_loss(dparams: Any, base_params: Any, cfg: Any, h_l: jax.Array, valid: jax.Array,
            anchors: jax.Array, labels: jax.Array, mask: jax.Array,
            transfer_layer: int) -> tuple[jax.Array, jax.Array]:
  """labels/mask [B, A, k] at the anchors -> (loss, top-1 accuracy per pseudo token [k])."""
  logits = ht_pseudo_logits(dparams, base_params, cfg, h_l, valid, anchors, transfer_layer)
  hit = (jnp.argmax(logits, -1) == labels) & mask
  acc = jnp.sum(hit, (0, 1)) / jnp.maximum(jnp.sum(mask, (0, 1)), 1)
  return masked_cross_entropy(logits, labels, mask), acc


def topk_hits(logits: jax.Array, labels: jax.Array, mask: jax.Array, topk: int) -> jax.Array:
  """[K, topk] counts of masked positions whose label is the rank-r guess of head i.

  logits [..., K, V], labels/mask [..., K]."""
  _, guesses = jax.lax.top_k(logits, topk)  # [..., K, topk]
  hit = (guesses == labels[..., None]) & mask[..., None]
  return jnp.sum(hit.reshape(-1, *hit.shape[-2:]), axis=0)
