"""Builders for the weights tests: tiny transformers LLaMA checkpoints, GGUF files written from them
(with llama.cpp's q/k permutation, written here independently of the importer), logits on both sides."""

import os
from typing import Any, Optional

import gguf
import jax
import jax.numpy as jnp
import numpy as np
import torch
import transformers

from apar_jax.model import CausalSpec, build_model

D_MODEL, N_LAYERS, N_HEADS, HEAD_DIM, FFN = 64, 2, 4, 16, 128
LLAMA3_ROPE = {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
               'high_freq_factor': 4.0, 'original_max_position_embeddings': 64}


def make_hf_llama(out_dir: str, *, vocab: int = 96, n_kv_heads: int = 2, tie: bool = False,
                  bias: bool = False, rope_scaling: Optional[dict] = None,
                  max_shard_size: Optional[str] = None, seed: int = 0) -> transformers.LlamaForCausalLM:
  """A random fp32 LlamaForCausalLM saved to `out_dir`; norms and q/k/v biases are randomised too."""
  torch.manual_seed(seed)
  kwargs = dict(rope_scaling=rope_scaling) if rope_scaling else {}
  cfg = transformers.LlamaConfig(
      vocab_size=vocab, hidden_size=D_MODEL, intermediate_size=FFN, num_hidden_layers=N_LAYERS,
      num_attention_heads=N_HEADS, num_key_value_heads=n_kv_heads, head_dim=HEAD_DIM,
      max_position_embeddings=256, rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=tie,
      attention_bias=bias, initializer_range=0.1, **kwargs)
  model = transformers.LlamaForCausalLM(cfg).eval()
  with torch.no_grad():
    for name, p in model.named_parameters():
      if 'norm' in name:
        p.copy_(1.0 + 0.2 * torch.randn_like(p))
      elif name.endswith(('q_proj.bias', 'k_proj.bias', 'v_proj.bias')):
        p.normal_(0.0, 0.2)  # o_proj.bias stays zero: our model has none
  kwargs = dict(max_shard_size=max_shard_size) if max_shard_size else {}
  model.save_pretrained(out_dir, **kwargs)
  return model


def hf_logits(model: Any, tokens: np.ndarray) -> np.ndarray:
  """tokens [B, T] -> logits [B, T, V] fp32 (transformers reference)."""
  with torch.no_grad():
    return model(torch.as_tensor(tokens)).logits.float().numpy()


def our_logits(model_cfg: Any, params: Any, tokens: np.ndarray) -> np.ndarray:
  """tokens [B, T] -> logits [B, T, V] of our model with causal attention."""
  positions = np.broadcast_to(np.arange(tokens.shape[1], dtype=np.int32), tokens.shape)
  model = build_model(model_cfg)
  fwd = jax.jit(lambda p, t, q: model.apply({'params': p}, t, q, CausalSpec()).logits)
  return np.asarray(fwd(params, jnp.asarray(tokens), jnp.asarray(positions)))


def llama_cpp_permute(w: np.ndarray, n_heads: int) -> np.ndarray:
  """What llama.cpp's converter does to q/k rows: within each head, row a*D/2 + b -> row 2*b + a."""
  head_dim = w.shape[0] // n_heads
  out = np.empty_like(w)
  for h in range(n_heads):
    for a in range(2):
      for b in range(head_dim // 2):
        out[h * head_dim + 2 * b + a] = w[h * head_dim + a * head_dim // 2 + b]
  return out


_GGUF_NAMES = {'input_layernorm.weight': 'attn_norm.weight', 'self_attn.q_proj': 'attn_q',
               'self_attn.k_proj': 'attn_k', 'self_attn.v_proj': 'attn_v',
               'self_attn.o_proj.weight': 'attn_output.weight',
               'post_attention_layernorm.weight': 'ffn_norm.weight', 'mlp.gate_proj.weight':
               'ffn_gate.weight', 'mlp.up_proj.weight': 'ffn_up.weight',
               'mlp.down_proj.weight': 'ffn_down.weight'}


def _to_gguf_name(name: str) -> Optional[str]:
  if name == 'model.embed_tokens.weight':
    return 'token_embd.weight'
  if name == 'model.norm.weight':
    return 'output_norm.weight'
  if name == 'lm_head.weight':
    return 'output.weight'
  parts = name.split('.')  # model.layers.{i}.rest
  rest = '.'.join(parts[3:])
  for hf, gg in _GGUF_NAMES.items():
    if rest.startswith(hf):
      return f'blk.{parts[2]}.{gg}{rest[len(hf):]}'
  return None  # o_proj.bias (all zero) is dropped, as llama.cpp does for LLaMA


def write_llama_gguf(path: str, model: Any, *, qtype: gguf.GGMLQuantizationType =
                     gguf.GGMLQuantizationType.F32, arch: str = 'llama',
                     rope_freqs: Optional[np.ndarray] = None,
                     raw_qtype: Optional[gguf.GGMLQuantizationType] = None) -> str:
  """Writes `model` (a LlamaForCausalLM) as a llama.cpp-style GGUF; matrices in `qtype`.

  `raw_qtype` writes the matrices as random bytes labelled with that type (for unsupported types).
  """
  cfg = model.config
  writer = gguf.GGUFWriter(path, arch)
  writer.add_block_count(cfg.num_hidden_layers)
  writer.add_context_length(cfg.max_position_embeddings)
  writer.add_embedding_length(cfg.hidden_size)
  writer.add_feed_forward_length(cfg.intermediate_size)
  writer.add_head_count(cfg.num_attention_heads)
  writer.add_head_count_kv(cfg.num_key_value_heads)
  writer.add_rope_freq_base(10000.0)
  writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
  writer.add_rope_dimension_count(HEAD_DIM)
  if rope_freqs is not None:
    writer.add_tensor('rope_freqs.weight', rope_freqs.astype(np.float32))
  rng = np.random.default_rng(0)
  for name, tensor in model.state_dict().items():
    gg = _to_gguf_name(name)
    if gg is None or (gg == 'output.weight' and cfg.tie_word_embeddings):
      continue
    w = tensor.float().numpy()
    if '.attn_q.' in gg:
      w = llama_cpp_permute(w, cfg.num_attention_heads)
    elif '.attn_k.' in gg:
      w = llama_cpp_permute(w, cfg.num_key_value_heads)
    if w.ndim == 2 and raw_qtype is not None:
      block, size = gguf.GGML_QUANT_SIZES[raw_qtype]
      raw = rng.integers(0, 255, (w.shape[0], w.shape[1] // block * size), dtype=np.uint8)
      writer.add_tensor(gg, raw, raw_dtype=raw_qtype)
    elif w.ndim == 2 and qtype != gguf.GGMLQuantizationType.F32:
      writer.add_tensor(gg, gguf.quants.quantize(w, qtype), raw_dtype=qtype)
    else:
      writer.add_tensor(gg, np.ascontiguousarray(w, np.float32))
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  return path


def truncate(path: str, keep_fraction: float) -> None:
  """Cuts a file to `keep_fraction` of its size (an interrupted download)."""
  size = os.path.getsize(path)
  with open(path, 'r+b') as f:
    f.truncate(int(size * keep_fraction))


def load_repo_config(name: str) -> Any:
  """configs/<name>.py's get_config(), loaded by path like the CLI does."""
  import importlib.util
  path = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(f'_weights_test_config_{name}', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def numpy_random_params(model_cfg: Any, seed: int = 0) -> Any:
  """A param tree of the model's shapes/dtypes filled from numpy (no init compile: fast)."""
  from apar_jax.weights import abstract_params
  rng = np.random.default_rng(seed)
  return jax.tree.map(lambda s: jnp.asarray(rng.normal(0, 0.1, s.shape), s.dtype),
                      abstract_params(model_cfg))
