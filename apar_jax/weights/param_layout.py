"""From Hugging Face-named, torch-layout tensors to the apar_jax param tree (docs/architecture.md).

Both importers speak this one vocabulary: the safetensors reader hands over tensors as stored, the GGUF
reader renames its tensors to the Hugging Face names and undoes llama.cpp's q/k row permutation first.
Torch stores a linear layer as weight [out, in]; our kernels are [in, out] with heads split out.
"""

import dataclasses
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from tqdm.auto import tqdm

from apar_jax.weights.errors import ShapeMismatchError

Params = dict[str, Any]
Reader = Callable[[str], np.ndarray]  # HF tensor name -> array in torch layout


@dataclasses.dataclass(frozen=True)
class TensorPlan:
  """One checkpoint tensor: where it comes from, where it goes and how it is reshaped."""
  source: str  # HF name, e.g. 'model.layers.0.self_attn.q_proj.weight'
  target: tuple[str, ...]  # path in the param tree, e.g. ('layers_0', 'attention', 'q_proj', 'kernel')
  source_shape: tuple[int, ...]  # torch layout, checked before the transform
  transform: Callable[[np.ndarray], np.ndarray]


def _linear_to_heads(heads: int, head_dim: int) -> Callable[[np.ndarray], np.ndarray]:
  """q/k/v: weight [H*D, d] -> kernel [d, H, D]."""
  return lambda w: w.T.reshape(w.shape[1], heads, head_dim)


def _heads_to_linear(heads: int, head_dim: int) -> Callable[[np.ndarray], np.ndarray]:
  """o: weight [d, H*D] -> kernel [H, D, d]."""
  return lambda w: w.T.reshape(heads, head_dim, w.shape[0])


def _bias_to_heads(heads: int, head_dim: int) -> Callable[[np.ndarray], np.ndarray]:
  """q/k/v bias [H*D] -> [H, D]."""
  return lambda b: b.reshape(heads, head_dim)


def _transpose(w: np.ndarray) -> np.ndarray:
  return w.T


def _identity(w: np.ndarray) -> np.ndarray:
  return w


def hf_tensor_plan(cfg: ml_collections.ConfigDict, vocab_size: Optional[int] = None) -> list[TensorPlan]:
  """Every tensor of a LLaMA checkpoint with model config `cfg` (vocab `vocab_size`, default cfg's)."""
  vocab = int(cfg.vocab_size if vocab_size is None else vocab_size)
  d, hq, hkv, hd, ffn = cfg.d_model, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn_dim
  plan = [TensorPlan('model.embed_tokens.weight', ('embed', 'embedding'), (vocab, d), _identity)]
  for i in range(cfg.n_layers):
    src, dst = f'model.layers.{i}.', f'layers_{i}'
    attn, mlp = src + 'self_attn.', src + 'mlp.'
    plan += [
        TensorPlan(src + 'input_layernorm.weight', (dst, 'attention_norm', 'scale'), (d,), _identity),
        TensorPlan(attn + 'q_proj.weight', (dst, 'attention', 'q_proj', 'kernel'), (hq * hd, d),
                   _linear_to_heads(hq, hd)),
        TensorPlan(attn + 'k_proj.weight', (dst, 'attention', 'k_proj', 'kernel'), (hkv * hd, d),
                   _linear_to_heads(hkv, hd)),
        TensorPlan(attn + 'v_proj.weight', (dst, 'attention', 'v_proj', 'kernel'), (hkv * hd, d),
                   _linear_to_heads(hkv, hd)),
    ]
    if cfg.attention_bias:
      plan += [
          TensorPlan(attn + 'q_proj.bias', (dst, 'attention', 'q_proj', 'bias'), (hq * hd,),
                     _bias_to_heads(hq, hd)),
          TensorPlan(attn + 'k_proj.bias', (dst, 'attention', 'k_proj', 'bias'), (hkv * hd,),
                     _bias_to_heads(hkv, hd)),
          TensorPlan(attn + 'v_proj.bias', (dst, 'attention', 'v_proj', 'bias'), (hkv * hd,),
                     _bias_to_heads(hkv, hd)),
      ]
    plan += [
        TensorPlan(attn + 'o_proj.weight', (dst, 'attention', 'o_proj', 'kernel'), (d, hq * hd),
                   _heads_to_linear(hq, hd)),
        TensorPlan(src + 'post_attention_layernorm.weight', (dst, 'mlp_norm', 'scale'), (d,),
                   _identity),
        TensorPlan(mlp + 'gate_proj.weight', (dst, 'mlp', 'gate_proj', 'kernel'), (ffn, d), _transpose),
        TensorPlan(mlp + 'up_proj.weight', (dst, 'mlp', 'up_proj', 'kernel'), (ffn, d), _transpose),
        TensorPlan(mlp + 'down_proj.weight', (dst, 'mlp', 'down_proj', 'kernel'), (d, ffn), _transpose),
    ]
  plan.append(TensorPlan('model.norm.weight', ('final_norm', 'scale'), (d,), _identity))
  if not cfg.tie_embeddings:
    plan.append(TensorPlan('lm_head.weight', ('lm_head', 'kernel'), (vocab, d), _transpose))
  return plan


def _set_path(tree: Params, path: tuple[str, ...], value: Any) -> None:
  for key in path[:-1]:
    tree = tree.setdefault(key, {})
  tree[path[-1]] = value


def _get_path(tree: Any, path: tuple[str, ...]) -> Any:
  for key in path:
    if tree is None:
      return None
    tree = tree[key]
  return tree


def assemble_params(plan: list[TensorPlan], read: Reader, dtype: Any, *, shardings: Any = None,
                    source_name: str = 'checkpoint', progress: bool = True) -> Params:
  """Reads every planned tensor one at a time, checks its shape, reshapes, casts and places it.

  `read(name)` returns a (possibly memory-mapped) array in torch layout; it is cast to `dtype` right
  away, so peak host memory is about one tensor beyond the result. `shardings` (a pytree matching the
  result, optional) places each leaf directly with its target sharding.
  """
  dtype = jnp.dtype(dtype)
  params: Params = {}
  for item in tqdm(plan, desc=f'loading {source_name}', unit='tensor', disable=not progress,
                   leave=False):
    array = read(item.source)
    if tuple(array.shape) != item.source_shape:
      raise ShapeMismatchError(
          f'{source_name}: tensor {item.source!r} has shape {tuple(array.shape)} but the model config '
          f'expects {item.source_shape}; the checkpoint does not match its config (or the model '
          f'config you passed): check d_model / n_heads / n_kv_heads / head_dim / ffn_dim / vocab_size')
    value = np.ascontiguousarray(item.transform(array), dtype=dtype)
    if np.may_share_memory(value, array):  # a view of the memory-mapped file: never alias it
      value = value.copy()
    del array
    sharding = _get_path(shardings, item.target) if shardings is not None else None
    _set_path(params, item.target, jax.device_put(value, sharding) if sharding is not None
              else jnp.asarray(value))
  return params
