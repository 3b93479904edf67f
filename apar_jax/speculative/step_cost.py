"""Measured step cost on this backend, cached in a small JSON file.

The engine picks its draft trees from what a step costs here (`engine/setup/tree_plan.py`), so it
needs:
  * `forward[rows][T]`: seconds of one verification forward of `rows` rows x T query tokens over a
    paged cache (`auto_tree.measure_step_times`);
  * `draft[rows][(h, k)]`: seconds of the drafter's own per-step work for a tree h levels deep that
    reads the top k guesses per level (Medusa: h heads, their LM-head rows and top-k; Hidden
    Transfer: the LM head on h pseudo states and top-k; prompt lookup: the n-gram search, k = 1;
    token recycling: the context match, the tree walk and the table refresh from every node).
Each figure is measured once per (backend, device kind, jax version, model shape, rows, context, page
size, attention implementation; drafter kind and top-k for `draft`) and kept in `cache_path`
(`cache_file`: by default `~/.cache/apar_jax/step_costs.json`, or under $APAR_JAX_CACHE_DIR; ''
keeps nothing); `remeasure=True` measures again.
A missing, unreadable or foreign cache file is measured over, never an error.
"""

import dataclasses
import datetime
import hashlib
import json
import os
import sys
import tempfile
import time
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.model import Transformer
from apar_jax.speculative import medusa, prompt_lookup, token_recycling
from apar_jax.speculative.auto_tree import measure_step_times
from apar_jax.speculative.layer_runner import lm_head_fn
from apar_jax.speculative.top_tokens import top_tokens
from apar_jax.speculative.tree import TokenTree

CACHE_VERSION = 2
CACHE_DIR_ENV = 'APAR_JAX_CACHE_DIR'  # where 'default' keeps the file (else ~/.cache/apar_jax)


def cache_file(setting: str) -> str:
  """The file of `config.speculative.step_cost_cache`: 'default' -> $APAR_JAX_CACHE_DIR or
  ~/.cache/apar_jax, then step_costs.json; '' -> '' (nothing kept); a path -> that file."""
  if setting != 'default':
    return os.path.expanduser(setting) if setting else ''
  folder = os.environ.get(CACHE_DIR_ENV) or os.path.join('~', '.cache', 'apar_jax')
  return os.path.join(os.path.expanduser(folder), 'step_costs.json')


@dataclasses.dataclass(frozen=True)
class StepCosts:
  """Seconds per step on this backend: forward[rows][T] and draft[rows][(levels, top-k)]."""
  forward: dict[int, dict[int, float]]
  draft: dict[int, dict[tuple[int, int], float]]
  measured: tuple[str, ...]  # the keys measured now (the rest came from the cache)


def backend_key(model_cfg: Any, context: int, page_size: int, attention_impl: str) -> str:
  """What a measured time depends on besides rows and T."""
  dev = jax.devices()[0]
  shape = json.dumps({k: str(v) for k, v in sorted(dict(model_cfg).items())}, sort_keys=True)
  model = hashlib.sha1(shape.encode()).hexdigest()[:12]
  return (f'{jax.default_backend()}|{dev.device_kind}|jax {jax.__version__}|model {model}|'
          f'context {context}|page {page_size}|attention {attention_impl}')


def _read(path: str) -> dict[str, Any]:
  try:
    with open(path) as f:
      data = json.load(f)
  except FileNotFoundError:
    return {}
  except (OSError, ValueError) as e:
    print(f'[step_cost] ignoring the unreadable cache {path}: {e}', file=sys.stderr)
    return {}
  if not isinstance(data, dict) or data.get('version') != CACHE_VERSION:
    return {}
  entries = data.get('entries')
  return entries if isinstance(entries, dict) else {}


def _write(path: str, entries: dict[str, Any]) -> None:
  """Atomic (a concurrent reader sees the old or the new file); a read-only place only warns."""
  try:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.', suffix='.tmp')
    with os.fdopen(fd, 'w') as f:
      json.dump({'version': CACHE_VERSION, 'entries': entries}, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
  except OSError as e:
    print(f'[step_cost] could not write the cache {path}: {e}', file=sys.stderr)


def _seconds(entry: Any, parse: Callable[[str], Any] = int) -> Optional[dict[Any, float]]:
  """{parse(key): float} of a cache entry, None if it is malformed."""
  try:
    out = {parse(k): float(v) for k, v in entry['seconds'].items()}
  except (KeyError, TypeError, ValueError, AttributeError):
    return None
  return out if out and all(v > 0 for v in out.values()) else None


def _shape_key(text: str) -> tuple[int, int]:
  h, k = text.split(',')
  return int(h), int(k)


def draft_work(kind: str, base_params: Any, dparams: Any, model_cfg: Any, heads: int, topk: int,
               history: int, max_ngram: int, min_ngram: int) -> Callable[[int], Callable[[], Any]]:
  """rows -> a jitted thunk doing one step's drafting for a tree `heads` levels deep reading the
  top `topk` guesses of each."""
  lm_head = lm_head_fn(base_params, model_cfg)
  d = int(model_cfg.d_model)

  def for_rows(rows: int) -> Callable[[], Any]:
    if kind == 'medusa':
      sub = {f'head_{i}': dparams[f'head_{i}'] for i in range(heads)}
      fn = jax.jit(lambda p, h: medusa.propose(p, h, lm_head, topk))
      args = (sub, jnp.ones((rows, d), jnp.dtype(model_cfg.dtype)))
    elif kind == 'hidden_transfer':
      fn = jax.jit(lambda h: top_tokens(lm_head(h), topk))
      args = (jnp.ones((rows, heads, d), jnp.dtype(model_cfg.dtype)),)
    elif kind == 'lookup':
      fn = jax.jit(lambda t, n: prompt_lookup.lookup(t, n, heads, max_ngram, min_ngram))
      args = (jnp.ones((rows, history), jnp.int32), jnp.full((rows,), history // 2, jnp.int32))
    elif kind == 'token_recycling':  # a spine of `heads` levels and `topk` first-level guesses
      tree = TokenTree.from_paths([(0,) * i for i in range(1, heads + 1)]
                                  + [(r,) for r in range(1, topk)])
      vocab = int(model_cfg.vocab_size)

      def recycle(table, hist, n, logits):
        ctx = prompt_lookup.lookup(hist, n, heads, max_ngram, min_ngram)[..., 0]
        cand, _ = token_recycling.fill(table, hist[:, 0], tree, ctx)
        return token_recycling.refresh(table, cand.reshape(-1), logits,
                                       jnp.ones((cand.size,), bool))
      fn = jax.jit(recycle)
      args = (token_recycling.empty_table(vocab, topk), jnp.ones((rows, history), jnp.int32),
              jnp.full((rows,), history // 2, jnp.int32),
              jnp.zeros((rows * tree.num_nodes, vocab), jnp.dtype(model_cfg.dtype)))
    else:
      raise ValueError(f'no draft cost for drafter kind {kind!r}')
    return lambda: fn(*args)
  return for_rows


def time_thunks(thunks: dict[Any, Callable[[], Any]], repeats: int,
                clock: Callable[[], float] = time.perf_counter) -> dict[Any, float]:
  """Fastest of `repeats` interleaved runs of each compiled thunk (the first call compiles)."""
  for fn in thunks.values():
    jax.block_until_ready(fn())
  times: dict[int, list[float]] = {k: [] for k in thunks}
  for _ in range(repeats):
    for k, fn in thunks.items():
      t0 = clock()
      jax.block_until_ready(fn())
      times[k].append(clock() - t0)
  return {k: float(np.min(v)) for k, v in times.items()}


def step_costs(model: Transformer, base_params: Any, rows_list: Sequence[int],
               sizes: Sequence[int],
               draft_fn: Optional[Callable[[int, int], Callable[[int], Any]]],
               draft_shapes: Sequence[tuple[int, int]], draft_key: str, *, context: int,
               page_size: int,
               attention_impl: str = 'auto', cache_path: str = 'default',
               remeasure: bool = False, repeats: int = 5,
               log: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> StepCosts:
  """Forward times for `sizes` query tokens and draft times for each (levels, top-k) of
  `draft_shapes` (`draft_fn(h, k)` -> rows -> thunk; None: no drafter work), at every row count of
  `rows_list`; cached."""
  path = cache_file(cache_path)
  entries = _read(path) if path else {}  # kept whole: remeasuring rewrites only this key's figures
  base = backend_key(model.cfg, context, page_size, attention_impl)
  forward, draft, measured = {}, {}, []
  stamp = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')
  sizes = sorted(set(int(t) for t in sizes))
  for rows in rows_list:
    key = f'forward|{base}|rows {rows}'
    got = (None if remeasure else _seconds(entries.get(key))) or {}
    missing = [t for t in sizes if t not in got]
    if missing:
      log(f'[step_cost] measuring the forward of {rows} row(s) x T = {missing} query tokens')
      got = {**got, **measure_step_times(model, base_params, missing, slots=rows, context=context,
                                         page_size=page_size, repeats=repeats,
                                         attention_impl=attention_impl)}
      entries[key] = {'seconds': got, 'measured': stamp}
      measured.append(key)
    forward[rows] = {t: got[t] for t in sizes}
    if draft_fn is None:
      continue
    key = f'draft {draft_key}|{base}|rows {rows}'
    shapes = sorted(set((int(h), int(k)) for h, k in draft_shapes))
    got = None if remeasure else _seconds(entries.get(key), _shape_key)
    if got is None or any(hk not in got for hk in shapes):
      log(f'[step_cost] measuring the {draft_key} drafter on {rows} row(s), (levels, top-k) = '
          f'{shapes}')
      timed = time_thunks({f'{h},{k}': draft_fn(h, k)(rows) for h, k in shapes}, repeats)
      got = {_shape_key(s): t for s, t in timed.items()}
      entries[key] = {'seconds': timed, 'measured': stamp}
      measured.append(key)
    draft[rows] = dict(got)
  if path and measured:
    _write(path, entries)
  return StepCosts(forward, draft, tuple(measured))
