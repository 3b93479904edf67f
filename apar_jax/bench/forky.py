"""A tiny random model that forks: the stand-in for the branch-timeline plot when the benchmarked
model never emits `[Fork]` (SmolLM2 before APAR fine-tuning).

A 2-layer model with a 64-token vocabulary whose `[Fork]` (and EOS) head columns point along the
embeddings of a set of trigger tokens: the current token's embedding dominates this small model's
residual stream, so greedy decoding emits `[Fork]` after those tokens. It shows the mechanics of
branch-parallel decoding (who is live at which step); its text means nothing.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from apar_jax.defaults import presets
from apar_jax.engine.device.token_choice import ControlIds
from apar_jax.model import CausalSpec, build_model

VOCAB = 64
FORK, CHILD, EOS = 60, 61, 62
CONTROL_IDS = ControlIds(FORK, CHILD, (EOS,))
PROMPT = (1, 2, 3, 4, 5, 6, 7, 8)
LABEL = 'tiny random model with a [Fork] head bias (mechanics only)'


def forky_config() -> ml_collections.ConfigDict:
  """The `tiny` preset shrunk to a 64-token vocabulary."""
  config = presets.tiny()
  config.name = 'bench_forky_tiny'
  config.model.update(vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2,
                      head_dim=8, ffn_dim=64, max_position=1024)
  config.engine.attention_impl = 'reference'
  return config


def _direction(emb: np.ndarray, tokens: range) -> np.ndarray:
  v = sum(emb[t] / np.linalg.norm(emb[t]) for t in tokens)
  return v / max(float(np.linalg.norm(v)), 1e-6)


def forky_params(config: ml_collections.ConfigDict, seed: int = 1, fork_gain: float = 0.05,
                 eos_gain: float = 0.03) -> Any:
  """Random params with `[Fork]` after every third token id and EOS after every seventh (with the
  defaults, greedy APAR on PROMPT forks 9 times: 100 tokens in 25 steps, 24 tokens per branch)."""
  model = build_model(config.model)
  params = model.init(jax.random.key(seed), jnp.zeros((1, 1), jnp.int32),
                      jnp.zeros((1, 1), jnp.int32), CausalSpec())['params']
  params = jax.tree.map(np.asarray, nn.unbox(params))
  emb = params['embed']['embedding']
  head = params['lm_head']['kernel'].copy()
  fork_after, eos_after = range(0, 60, 3), range(1, 60, 7)
  head[:, FORK] = fork_gain * _direction(emb, fork_after) * np.sqrt(len(fork_after))
  head[:, EOS] = eos_gain * _direction(emb, eos_after) * np.sqrt(len(eos_after))
  params['lm_head']['kernel'] = head
  return jax.tree.map(jnp.asarray, params)
