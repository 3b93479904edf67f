"""The simple decoder: a contiguous KV cache per layer, a jitted prefill and a jitted chunk of steps.

This is the foundation's reference greedy/sampling loop: one row per prompt, no branches, no paging.
Decoding runs in chunks of `chunk_steps` inside one `jax.lax.while_loop` (state donated), so the host
touches the device once per chunk - to stream the new tokens - not once per token.
"""

import dataclasses
import functools
from typing import Any, Callable, Optional, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import DenseCache, DenseCacheSpec, Transformer
from apar_jax.sampling import ban_tokens, sample_logits


@flax.struct.dataclass
class DecodeState:
  caches: tuple  # n_layers x DenseCache([B, max_len, Hkv, D])
  lengths: jax.Array  # [B] int32, tokens in the cache (= position of the next token)
  last_token: jax.Array  # [B] int32, sampled but not yet in the cache
  done: jax.Array  # [B] bool
  out: jax.Array  # [B, max_new] int32
  num_out: jax.Array  # [B] int32
  keys: jax.Array  # [B] PRNG keys
  steps: jax.Array  # [] int32, decode forwards run so far


@dataclasses.dataclass(frozen=True)
class SamplingParams:
  temperature: float = 0.0
  top_k: int = 0
  top_p: float = 1.0
  seed: int = 0


def _bucket(n: int, quantum: int = 64) -> int:
  """Rounds n up to a multiple of `quantum` (bounds the number of compiled shapes)."""
  return max(quantum, -(-n // quantum) * quantum)


class DenseGenerator:
  """Greedy or sampled decoding of a batch of prompts with a dense cache."""

  def __init__(self, model: Transformer, params: Any, *, stop_ids: Sequence[int],
               banned_ids: Sequence[int] = (), chunk_steps: int = 16):
    self.model = model
    self.params = params
    self.stop_ids = tuple(int(i) for i in stop_ids)
    self.banned_ids = tuple(int(i) for i in banned_ids)
    self.chunk_steps = chunk_steps
    cfg = model.cfg
    self._cache_dtype = jnp.dtype(cfg.dtype)
    self._prefill = jax.jit(self._prefill_impl, static_argnames=('max_len', 'max_new'))
    self._decode_chunk = jax.jit(self._decode_chunk_impl, donate_argnums=(1,))

  # ---- device functions -------------------------------------------------------------------------
  def _prefill_impl(self, params, tokens, prompt_lens, keys, temperature, top_k, top_p, *,
                    max_len: int, max_new: int) -> DecodeState:
    """tokens [B, Tp] right-padded, prompt_lens [B] -> state with the first new token sampled."""
    cfg = self.model.cfg
    b, tp = tokens.shape
    caches = tuple(DenseCache.zeros(b, max_len, cfg.n_kv_heads, cfg.head_dim, self._cache_dtype)
                   for _ in range(cfg.n_layers))
    positions = jnp.broadcast_to(jnp.arange(tp, dtype=jnp.int32), (b, tp))
    out = self.model.apply({'params': params}, tokens, positions,
                           DenseCacheSpec(jnp.zeros((b,), jnp.int32)), caches)
    last_logits = jnp.take_along_axis(out.logits, (prompt_lens - 1)[:, None, None], axis=1)[:, 0]
    keys, step_keys = _split_keys(keys)
    first = sample_logits(ban_tokens(last_logits, self.banned_ids), step_keys, temperature, top_k,
                          top_p)
    done = jnp.isin(first, jnp.asarray(self.stop_ids + (-1,), jnp.int32))
    buf = jnp.zeros((b, max_new), jnp.int32).at[:, 0].set(first)
    return DecodeState(out.caches, prompt_lens.astype(jnp.int32), first, done | (max_new <= 1),
                       buf, jnp.ones((b,), jnp.int32), keys, jnp.zeros((), jnp.int32))

  def _decode_chunk_impl(self, params, state: DecodeState, temperature, top_k, top_p,
                         num_steps) -> DecodeState:
    """Runs up to `num_steps` decode steps, stopping early when every row is done."""
    max_new = state.out.shape[1]
    stop = jnp.asarray(self.stop_ids + (-1,), jnp.int32)

    def cond(carry):
      st, i = carry
      return (i < num_steps) & ~jnp.all(st.done)

    def body(carry):
      st, i = carry
      out = self.model.apply({'params': params}, st.last_token[:, None], st.lengths[:, None],
                             DenseCacheSpec(st.lengths), st.caches)
      keys, step_keys = _split_keys(st.keys)
      tok = sample_logits(ban_tokens(out.logits[:, 0], self.banned_ids), step_keys, temperature,
                          top_k, top_p)
      active = ~st.done
      tok = jnp.where(active, tok, 0)
      write_at = jnp.where(active, st.num_out, max_new)  # out of bounds = dropped
      new_out = st.out.at[jnp.arange(tok.shape[0]), write_at].set(tok, mode='drop')
      num_out = st.num_out + active
      done = st.done | (active & (jnp.isin(tok, stop) | (num_out >= max_new)))
      new_state = DecodeState(out.caches, st.lengths + active, jnp.where(active, tok, st.last_token),
                              done, new_out, num_out, keys, st.steps + 1)
      return new_state, i + 1

    state, _ = jax.lax.while_loop(cond, body, (state, jnp.zeros((), jnp.int32)))
    return state

  # ---- host API ---------------------------------------------------------------------------------
  def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int,
               sampling: SamplingParams = SamplingParams(),
               on_tokens: Optional[Callable[[int, list[int]], None]] = None) -> dict[str, Any]:
    """Decodes every prompt; returns {'tokens': [[...]], 'decode_steps', 'prefill_s', 'decode_s'}.

    `on_tokens(row, new_token_ids)` is called after each chunk with the tokens that row gained.
    """
    import time
    if not prompts or any(len(p) == 0 for p in prompts):
      raise ValueError('every prompt must have at least one token')
    if max_new_tokens < 1:
      raise ValueError(f'max_new_tokens must be >= 1, got {max_new_tokens}')
    b = len(prompts)
    longest = max(len(p) for p in prompts)
    max_len = _bucket(longest + max_new_tokens)
    limit = self.model.cfg.max_position
    if longest + max_new_tokens > limit:
      raise ValueError(f'prompt ({longest} tokens) + max_new_tokens ({max_new_tokens}) exceeds the '
                       f"model's max_position {limit}; shorten the prompt or lower --max_new_tokens")
    vocab = self.model.cfg.vocab_size
    if any(t < 0 or t >= vocab for p in prompts for t in p):
      raise ValueError(f'prompt token ids must be in [0, {vocab})')
    tp = _bucket(longest, 16)
    tokens = np.zeros((b, tp), np.int32)
    for i, p in enumerate(prompts):
      tokens[i, :len(p)] = p
    lens = jnp.asarray([len(p) for p in prompts], jnp.int32)
    keys = jax.random.split(jax.random.key(sampling.seed), b)
    temp = jnp.full((b,), sampling.temperature, jnp.float32)
    top_k = jnp.full((b,), sampling.top_k, jnp.int32)
    top_p = jnp.full((b,), sampling.top_p, jnp.float32)

    t0 = time.perf_counter()
    state = self._prefill(self.params, jnp.asarray(tokens), lens, keys, temp, top_k, top_p,
                          max_len=max_len, max_new=max_new_tokens)
    first = np.asarray(state.out[:, 0])
    prefill_s = time.perf_counter() - t0
    emitted = [1] * b
    if on_tokens:
      for i in range(b):
        on_tokens(i, [int(first[i])])
    t1 = time.perf_counter()
    while not bool(jnp.all(state.done)):
      state = self._decode_chunk(self.params, state, temp, top_k, top_p,
                                 jnp.asarray(self.chunk_steps, jnp.int32))
      if on_tokens:
        out, num = np.asarray(state.out), np.asarray(state.num_out)
        for i in range(b):
          if num[i] > emitted[i]:
            on_tokens(i, [int(t) for t in out[i, emitted[i]:num[i]]])
            emitted[i] = int(num[i])
    out, num = np.asarray(state.out), np.asarray(state.num_out)
    decode_s = time.perf_counter() - t1
    return {'tokens': [[int(t) for t in out[i, :num[i]]] for i in range(b)],
            'decode_steps': int(state.steps) + 1, 'prefill_s': prefill_s, 'decode_s': decode_s}


def _split_keys(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
  """keys [B] -> (next keys [B], keys for this step [B])."""
  pairs = jax.vmap(lambda k: jax.random.split(k, 2))(keys)  # [B, 2]
  return pairs[:, 0], pairs[:, 1]
