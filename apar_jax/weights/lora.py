"""LoRA on the param pytree, plus trainable rows for the APAR control tokens.

An adapter holds, for every targeted projection kernel W (viewed as a matrix [in, out] by flattening
its input and output axes), low-rank factors A [in, r] and B [r, out], and the embedding rows of the
new tokens (`[Fork]`, `[Child]`; also their LM-head columns when embeddings are untied). Applying it:

    W' = W + (alpha / r) * reshape(A @ B, W.shape)          embed[token_ids] = embed_rows

B starts at zero, so a fresh adapter leaves the model unchanged. `apply_adapter` is the single entry
point used by the trainer (inside the differentiated loss) and by the engine (once, at load time).
"""

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.defaults.training import LORA_TARGETS

Params = dict[str, Any]
TARGETS = LORA_TARGETS  # the projections an adapter may touch
INPUT_AXES = {'o_proj': 2}  # kernel axes that are inputs ([H, D, d]); every other target has 1


@dataclasses.dataclass(frozen=True)
class LoraSpec:
  """Static description of an adapter (saved with it)."""
  rank: int
  alpha: float
  targets: tuple[str, ...]
  token_ids: tuple[int, ...]  # rows of the embedding (and LM head) the adapter replaces

  def __post_init__(self):
    unknown = set(self.targets) - set(TARGETS)
    if unknown:
      raise ValueError(f'unknown LoRA target modules {sorted(unknown)}; choose from {TARGETS}')
    if self.rank < 1:
      raise ValueError(f'LoRA rank must be >= 1, got {self.rank}')

  @property
  def scale(self) -> float:
    return float(self.alpha) / float(self.rank)


@dataclasses.dataclass(frozen=True)
class Adapter:
  """`weights`: {'lora': {path...: {'a', 'b'}}, 'embed_rows': [n, d], optional 'head_cols': [d, n]}."""
  spec: LoraSpec
  weights: dict[str, Any]


def _module_paths(tree: Params, targets: Sequence[str], leaf_key: str) -> list[tuple[str, ...]]:
  """Paths of every targeted module (a dict holding `leaf_key`) in a params or LoRA tree."""
  found = []

  def walk(sub_tree, path):
    for key, sub in sub_tree.items():
      if isinstance(sub, dict):
        if key in targets and leaf_key in sub:
          found.append(path + (key,))
        else:
          walk(sub, path + (key,))

  walk(tree, ())
  return found


def _kernel_paths(params: Params, targets: Sequence[str]) -> list[tuple[str, ...]]:
  return _module_paths(params, targets, 'kernel')


def _lora_paths(lora: Params, targets: Sequence[str]) -> list[tuple[str, ...]]:
  return _module_paths(lora, targets, 'a')


def _matrix_shape(name: str, kernel_shape: Sequence[int]) -> tuple[int, int]:
  k = INPUT_AXES.get(name, 1)
  return int(np.prod(kernel_shape[:k])), int(np.prod(kernel_shape[k:]))


def _get(tree: Params, path: Sequence[str]) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def _set(tree: dict, path: Sequence[str], value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def init_adapter(params: Params, spec: LoraSpec, key: jax.Array) -> Adapter:
  """A fresh adapter for `params`: A ~ N(0, 1/in), B = 0, embedding rows copied from params."""
  paths = _kernel_paths(params, spec.targets)
  if not paths:
    raise ValueError(f'no kernels named {spec.targets} in the params: check train.lora.targets')
  lora: dict = {}
  for path, k in zip(paths, jax.random.split(key, len(paths))):
    kernel = _get(params, path)['kernel']
    n_in, n_out = _matrix_shape(path[-1], kernel.shape)
    a = jax.random.normal(k, (n_in, spec.rank), jnp.float32) / np.sqrt(n_in)
    _set(lora, path, {'a': a.astype(kernel.dtype), 'b': jnp.zeros((spec.rank, n_out), kernel.dtype)})
  ids = jnp.asarray(spec.token_ids, jnp.int32)
  weights = {'lora': lora, 'embed_rows': params['embed']['embedding'][ids]}
  if 'lm_head' in params:
    weights['head_cols'] = params['lm_head']['kernel'][:, ids]
  return Adapter(spec, weights)


def lora_delta(a: jax.Array, b: jax.Array, kernel_shape: Sequence[int], scale: float) -> jax.Array:
  """scale * A @ B reshaped to the kernel (fp32 product). a [in, r], b [r, out]."""
  prod = jnp.matmul(a.astype(jnp.float32), b.astype(jnp.float32), precision='highest')
  return (scale * prod).reshape(kernel_shape)


def merge_weights(params: Params, weights: dict[str, Any], spec: LoraSpec) -> Params:
  """params with the adapter `weights` applied (differentiable in `weights`)."""
  out = jax.tree.map(lambda x: x, params)  # fresh dicts; arrays shared
  for path in _lora_paths(weights['lora'], spec.targets):
    ab = _get(weights['lora'], path)
    module = _get(out, path)
    kernel = module['kernel']
    delta = lora_delta(ab['a'], ab['b'], kernel.shape, spec.scale)
    module['kernel'] = (kernel.astype(jnp.float32) + delta).astype(kernel.dtype)
  ids = jnp.asarray(spec.token_ids, jnp.int32)
  table = out['embed']['embedding']
  out['embed']['embedding'] = table.at[ids].set(weights['embed_rows'].astype(table.dtype))
  if 'head_cols' in weights:
    head = out['lm_head']['kernel']
    out['lm_head']['kernel'] = head.at[:, ids].set(weights['head_cols'].astype(head.dtype))
  return out


def apply_adapter(params: Params, adapter: Adapter) -> Params:
  """Base params -> params with the adapter merged in (what the engine decodes with)."""
  paths = _lora_paths(adapter.weights['lora'], adapter.spec.targets)
  for path in paths:
    try:
      kernel = _get(params, path)['kernel']
    except KeyError as e:
      raise ValueError(f'the adapter targets {"/".join(path)}, which these params lack: the adapter '
                       'was trained for another model') from e
    ab = _get(adapter.weights['lora'], path)
    if _matrix_shape(path[-1], kernel.shape) != (ab['a'].shape[0], ab['b'].shape[1]):
      raise ValueError(f'adapter shape for {"/".join(path)} does not fit kernel {kernel.shape}: the '
                       'adapter was trained for another model')
  vocab = params['embed']['embedding'].shape[0]
  if max(adapter.spec.token_ids) >= vocab:
    raise ValueError(f'the adapter sets token rows {adapter.spec.token_ids} but the model has '
                     f'{vocab} rows: set model.vocab_size to the tokenizer size (APAR tokens '
                     'included)')
  return merge_weights(params, adapter.weights, adapter.spec)
