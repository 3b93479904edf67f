"""A slow, obviously-correct reference for the engine: plain numpy, full recompute, no cache.

Written from the contracts in docs/architecture.md (parameter tree, rotate-half RoPE) and APAR.md
(decoding rules), independently of the engine and of the model code. Every token of every branch is
computed by running the whole model over the branch's visible sequence (prompt, ancestors up to and
including the spawning `[Fork]`, `[Child]`, its own tokens) at positions 0..n-1.
"""

import dataclasses
from typing import Any, Callable, Optional, Sequence

import numpy as np


def _rms_norm(x: np.ndarray, scale: np.ndarray, eps: float) -> np.ndarray:
  return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * scale


def _rope(x: np.ndarray, positions: np.ndarray, theta: float) -> np.ndarray:
  """x [T, H, D] rotated by positions [T] (pairs (i, i + D/2))."""
  d = x.shape[-1]
  inv_freq = 1.0 / theta ** (np.arange(0, d, 2, dtype=np.float64) / d)
  ang = positions[:, None].astype(np.float64) * inv_freq[None, :]  # [T, D/2]
  cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
  a, b = x[..., :d // 2], x[..., d // 2:]
  return np.concatenate([a * cos - b * sin, b * cos + a * sin], axis=-1)


def forward_logits(params: Any, cfg: Any, tokens: Sequence[int],
                   mask: Optional[np.ndarray] = None,
                   positions: Optional[np.ndarray] = None) -> np.ndarray:
  """Logits [T, V] (float64) of a sequence; `mask [T, T]` (default causal) says who sees whom."""
  p = _to_numpy(params)
  t = len(tokens)
  positions = np.arange(t) if positions is None else np.asarray(positions)
  mask = np.tril(np.ones((t, t), bool)) if mask is None else mask
  x = p['embed']['embedding'][np.asarray(tokens)]  # [T, d]
  group = cfg.n_heads // cfg.n_kv_heads
  for i in range(cfg.n_layers):
    lp = p[f'layers_{i}']
    h = _rms_norm(x, lp['attention_norm']['scale'], cfg.norm_eps)
    att = lp['attention']
    q = np.einsum('td,dhk->thk', h, att['q_proj']['kernel'])
    k = np.einsum('td,dhk->thk', h, att['k_proj']['kernel'])
    v = np.einsum('td,dhk->thk', h, att['v_proj']['kernel'])
    q, k = _rope(q, positions, cfg.rope_theta), _rope(k, positions, cfg.rope_theta)
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # [T, Hq, D]
    scores = np.einsum('qhd,khd->hqk', q, k) / np.sqrt(cfg.head_dim)
    scores = np.where(mask[None], scores, -np.inf)
    scores -= scores.max(-1, keepdims=True)
    w = np.exp(scores)
    w /= w.sum(-1, keepdims=True)
    o = np.einsum('hqk,khd->qhd', w, v)
    x = x + np.einsum('qhd,hde->qe', o, att['o_proj']['kernel'])
    h = _rms_norm(x, lp['mlp_norm']['scale'], cfg.norm_eps)
    mlp = lp['mlp']
    gate = h @ mlp['gate_proj']['kernel']
    up = h @ mlp['up_proj']['kernel']
    x = x + (gate / (1 + np.exp(-gate)) * up) @ mlp['down_proj']['kernel']
  x = _rms_norm(x, p['final_norm']['scale'], cfg.norm_eps)
  head = p['embed']['embedding'].T if cfg.tie_embeddings else p['lm_head']['kernel']
  return x @ head


def _to_numpy(params: Any) -> Any:
  if isinstance(params, dict):
    return {k: _to_numpy(v) for k, v in params.items()}
  return np.asarray(params, np.float64)


@dataclasses.dataclass
class RefBranch:
  parent: Optional['RefBranch']
  fork_point: int  # index of the [Fork] in the parent's tokens
  context: list[int]  # tokens visible before this branch's own outputs
  depth: int
  budget: int
  tokens: list[int] = dataclasses.field(default_factory=list)
  children: list['RefBranch'] = dataclasses.field(default_factory=list)


def apar_greedy(params: Any, cfg: Any, prompt: Sequence[int], *, fork_id: int, child_id: int,
                stop_ids: Sequence[int], max_new: int, max_depth: int,
                slot_capacity: int,
                adjust: Optional[Callable[[np.ndarray, list[int]], np.ndarray]] = None,
                ) -> RefBranch:
  """Greedy APAR decoding of one prompt with unlimited slots and pages; returns the root branch.

  Rules (APAR.md): `[Child]` is never chosen; `[Fork]` is banned right after `[Fork]`/`[Child]`, at
  the depth cap, as a branch's last budgeted token, and when a child would have no room in a slot.
  A child of a `[Fork]` at position p sees the parent's view up to and including it, then `[Child]`
  at p + 1, and has budget min(max_new, slot_capacity - (p + 1)).
  `adjust(logits, branch's own tokens) -> logits` runs before the bans (repetition penalties).
  """
  root = RefBranch(None, -1, list(prompt), 0, max_new)
  todo = [root]
  while todo:
    b = todo.pop()
    while len(b.tokens) < b.budget:
      seq = b.context + b.tokens
      logits = forward_logits(params, cfg, seq)[-1].copy()
      if adjust is not None:
        logits = adjust(logits, list(b.tokens))
      logits[child_id] = -np.inf
      last_fed = seq[-1]
      p = len(seq)  # position the chosen token will take
      child_budget = min(max_new, slot_capacity - (p + 1))
      if (last_fed in (fork_id, child_id) or b.depth >= max_depth
          or len(b.tokens) + 1 >= b.budget or child_budget < 1):
        logits[fork_id] = -np.inf
      tok = int(np.argmax(logits))
      b.tokens.append(tok)
      if tok == fork_id:
        child = RefBranch(b, len(b.tokens) - 1, seq + [fork_id, child_id], b.depth + 1,
                          child_budget)
        b.children.append(child)
        todo.append(child)
      if tok in stop_ids:
        break
  return root


def signature(b: RefBranch) -> tuple:
  """Same canonical form as `apar_jax.engine.tree_signature`."""
  return (tuple(b.tokens), tuple((c.fork_point, signature(c)) for c in b.children))


def preorder_text_ids(b: RefBranch, control: Sequence[int], stop_ids: Sequence[int]) -> list[int]:
  """Pre-order answer ids (control tokens dropped, each branch cut at its stop)."""
  out = []
  kids = {c.fork_point: c for c in b.children}
  for i, t in enumerate(b.tokens):
    if t in stop_ids:
      break
    if t not in control:
      out.append(t)
    if i in kids:
      out.extend(preorder_text_ids(kids[i], control, stop_ids))
  return out


def repeat_penalized(logits: np.ndarray, history: Sequence[int], penalty: float, ngram: int,
                     exempt: Sequence[int] = (), spared: Sequence[int] = ()) -> np.ndarray:
  """The repetition penalty (CTRL rule) over the distinct tokens of `history` but `exempt` and
  `spared`, then the ban of every token but `exempt` that would complete an `ngram`-gram already in
  it (0 = off), by plain list scans."""
  out = np.array(logits, np.float64)
  history = list(history)
  for t in set(history) - set(exempt) - set(spared):
    out[t] = out[t] / penalty if out[t] > 0 else out[t] * penalty
  if ngram:
    tail = history[len(history) - (ngram - 1):]
    for i in range(len(history) - ngram + 1):
      if history[i:i + ngram - 1] == tail and history[i + ngram - 1] not in exempt:
        out[history[i + ngram - 1]] = -np.inf
  return out
