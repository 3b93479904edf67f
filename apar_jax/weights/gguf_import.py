"""Loads a LLaMA-architecture GGUF file (llama.cpp) into our params.

GGUF tensors are renamed to their Hugging Face names and handed to the shared param layout. llama.cpp's
converter permutes the rows of q/k (weights and biases) within each head so that rotary pairs are
adjacent (GPT-J "interleaved" RoPE): HF row `a * D/2 + b` (a in {0, 1}) becomes GGUF row `2 * b + a`.
`unpermute_qk` inverts that, giving back the "rotate half" layout our RoPE uses.
"""

import re
from typing import Any, Optional

import ml_collections
import numpy as np

from apar_jax.model.rope import rope_inv_freq
from apar_jax.weights.compat import check_compatible
from apar_jax.weights.errors import MissingTensorError, UnsupportedArchitectureError
from apar_jax.weights.gguf_file import check_tensor_types, dequantize, field, open_gguf
from apar_jax.weights.model_config import make_model_config
from apar_jax.weights.param_layout import Params, assemble_params, hf_tensor_plan
from apar_jax.weights.vocab import fit_vocab

SUPPORTED_ARCHITECTURES = ('llama',)
_LAYER_NAMES = {  # GGUF suffix -> HF suffix, inside blk.{i} / model.layers.{i}
    'attn_norm.weight': 'input_layernorm.weight',
    'attn_q.weight': 'self_attn.q_proj.weight', 'attn_q.bias': 'self_attn.q_proj.bias',
    'attn_k.weight': 'self_attn.k_proj.weight', 'attn_k.bias': 'self_attn.k_proj.bias',
    'attn_v.weight': 'self_attn.v_proj.weight', 'attn_v.bias': 'self_attn.v_proj.bias',
    'attn_output.weight': 'self_attn.o_proj.weight',
    'ffn_norm.weight': 'post_attention_layernorm.weight',
    'ffn_gate.weight': 'mlp.gate_proj.weight', 'ffn_up.weight': 'mlp.up_proj.weight',
    'ffn_down.weight': 'mlp.down_proj.weight',
}
_GLOBAL_NAMES = {'token_embd.weight': 'model.embed_tokens.weight',
                 'output_norm.weight': 'model.norm.weight', 'output.weight': 'lm_head.weight'}
_HF_TO_GGUF_LAYER = {hf: gg for gg, hf in _LAYER_NAMES.items()}
_HF_LAYER = re.compile(r'model\.layers\.(\d+)\.(.+)')
LLAMA3_ORIGINAL_MAX_CANDIDATES = (8192, 4096, 2048, 16384, 32768, 65536, 131072)


def gguf_name(hf_name: str) -> str:
  """The GGUF tensor name of a HF LLaMA tensor name."""
  for gg, hf in _GLOBAL_NAMES.items():
    if hf == hf_name:
      return gg
  m = _HF_LAYER.fullmatch(hf_name)
  if m and m.group(2) in _HF_TO_GGUF_LAYER:
    return f'blk.{m.group(1)}.{_HF_TO_GGUF_LAYER[m.group(2)]}'
  raise KeyError(hf_name)


def unpermute_qk(w: np.ndarray, n_heads: int) -> np.ndarray:
  """Undoes llama.cpp's q/k row permutation: w [H*D, ...] (or bias [H*D]) -> same shape, HF order."""
  head_dim = w.shape[0] // n_heads
  rest = w.shape[1:]
  # GGUF rows of a head are (b, a) = (pair, half); HF rows are (a, b).
  return w.reshape(n_heads, head_dim // 2, 2, *rest).swapaxes(1, 2).reshape(w.shape)


def _llama3_from_rope_freqs(factors: np.ndarray, head_dim: int, theta: float,
                            original_hint: Optional[int], path: str) -> dict[str, Any]:
  """Recovers LLaMA-3 rope-scaling parameters from llama.cpp's `rope_freqs` factor tensor [D/2].

  Low frequencies are divided by `factor` (the largest entry); in the smooth band llama.cpp stores
  1 / ((1 - s) / factor + s) with s = (original / wavelen - low) / (high - low), which gives `original`
  back (low/high frequency factors 1 and 4, the LLaMA-3 values, are assumed and then verified).
  """
  factors = np.asarray(factors, np.float64)
  factor = float(np.max(factors))
  base = rope_inv_freq(head_dim, theta)
  candidates = [original_hint] if original_hint else []
  medium = (factors > 1 + 1e-4) & (factors < factor - 1e-4)
  if medium.any() and factor > 1:
    i = int(np.argmax(medium))
    s = (1 / factors[i] - 1 / factor) / (1 - 1 / factor)
    candidates.append(int(round(2 * np.pi / base[i] * (s * 3.0 + 1.0))))
  candidates += LLAMA3_ORIGINAL_MAX_CANDIDATES
  for original in candidates:
    scaled = rope_inv_freq(head_dim, theta, 'llama3', factor, 1.0, 4.0, original)
    if np.allclose(base / scaled, factors, rtol=1e-4):
      return dict(rope_kind='llama3', rope_factor=factor, rope_low_freq_factor=1.0,
                  rope_high_freq_factor=4.0, rope_original_max_position=original)
  raise UnsupportedArchitectureError(
      f'{path}: rope_freqs does not match LLaMA-3 rope scaling (factor {factor}, low/high frequency '
      f'factors 1/4) for any original context length tried ({candidates}): this rope scaling is not '
      f'supported; load the Hugging Face checkpoint instead')


def _read_config(reader: Any, path: str) -> ml_collections.ConfigDict:
  arch = field(reader, 'general.architecture')
  if arch not in SUPPORTED_ARCHITECTURES:
    raise UnsupportedArchitectureError(
        f'{path}: general.architecture is {arch!r}; only {SUPPORTED_ARCHITECTURES} GGUF files '
        f'(LLaMA-family decoders) are supported: pick a LLaMA-architecture GGUF')
  if int(field(reader, 'split.count', 1)) > 1:
    raise UnsupportedArchitectureError(
        f'{path} is one part of a split GGUF: merge the parts first with '
        f'`llama-gguf-split --merge first-part.gguf merged.gguf`')
  names = {t.name: t for t in reader.tensors}
  if 'token_embd.weight' not in names:
    raise MissingTensorError(f'{path} has no token_embd.weight: it is not a complete model file')
  vocab, d_model = (int(s) for s in reversed(names['token_embd.weight'].shape))
  n_heads = int(field(reader, f'{arch}.attention.head_count'))
  theta = float(field(reader, f'{arch}.rope.freq_base', 10000.0))
  head_dim = int(field(reader, f'{arch}.attention.key_length', d_model // n_heads))
  rope_dims = int(field(reader, f'{arch}.rope.dimension_count', head_dim))
  if rope_dims != head_dim:
    raise UnsupportedArchitectureError(f'{path}: RoPE on {rope_dims} of {head_dim} head dimensions '
                                       f'(partial rotary) is not supported')
  scaling_type = field(reader, f'{arch}.rope.scaling.type', 'none')
  if scaling_type not in ('none', ''):
    raise UnsupportedArchitectureError(f'{path}: rope scaling type {scaling_type!r} is not '
                                       f'supported (only LLaMA-3 scaling via rope_freqs)')
  rope: dict[str, Any] = {}
  if 'rope_freqs.weight' in names:
    original = field(reader, f'{arch}.rope.scaling.original_context_length', None)
    rope = _llama3_from_rope_freqs(dequantize(names['rope_freqs.weight']), head_dim, theta,
                                   int(original) if original else None, path)
  return make_model_config(
      vocab_size=vocab, d_model=d_model, n_layers=field(reader, f'{arch}.block_count'),
      n_heads=n_heads, n_kv_heads=field(reader, f'{arch}.attention.head_count_kv', n_heads),
      head_dim=head_dim, ffn_dim=field(reader, f'{arch}.feed_forward_length'), rope_theta=theta,
      norm_eps=field(reader, f'{arch}.attention.layer_norm_rms_epsilon', 1e-5),
      tie_embeddings='output.weight' not in names, attention_bias='blk.0.attn_q.bias' in names,
      max_position=field(reader, f'{arch}.context_length', 4096), **rope)


def model_config_from_gguf(path: str) -> ml_collections.ConfigDict:
  """Our model config for a LLaMA GGUF file; vocab = the file's (not grown)."""
  return _read_config(open_gguf(path), path)


def load_gguf(path: str, model_cfg: ml_collections.ConfigDict, *, dtype: Optional[Any] = None,
              shardings: Any = None, progress: bool = True) -> Params:
  """Params for `model_cfg` from a GGUF file: dequantised, q/k un-permuted, vocabulary grown.

  `dtype` defaults to the model's param_dtype; `shardings` (optional pytree) places leaves as they load.
  """
  reader = open_gguf(path)
  ckpt_cfg = _read_config(reader, path)
  check_compatible(ckpt_cfg, model_cfg, f'GGUF file {path}')
  plan = hf_tensor_plan(model_cfg, vocab_size=ckpt_cfg.vocab_size)
  tensors = {t.name: t for t in reader.tensors}
  check_tensor_types(reader, {gguf_name(p.source) for p in plan}, path)
  heads = {'q_proj': model_cfg.n_heads, 'k_proj': model_cfg.n_kv_heads}

  def read(hf_name: str) -> np.ndarray:
    name = gguf_name(hf_name)
    if name not in tensors:
      raise MissingTensorError(f'{path} has no tensor {name!r} (HF {hf_name!r}): the file is '
                               f'incomplete or was not written for a LLaMA model')
    array = dequantize(tensors[name])  # [out, in] fp32
    kind = hf_name.split('.')[-2]
    if kind in heads and array.shape[0] == heads[kind] * model_cfg.head_dim:  # else: shape error
      array = unpermute_qk(array, heads[kind])
    return array

  params = assemble_params(plan, read, dtype or model_cfg.param_dtype, shardings=shardings,
                           source_name=path, progress=progress)
  return fit_vocab(params, model_cfg, shardings)
