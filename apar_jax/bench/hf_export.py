"""Our params as a transformers `LlamaForCausalLM` (fp32): peers decode with the very same weights.

The inverse of `apar_jax.weights.param_layout`: our kernels are [in, out] with heads split out,
torch linear weights are [out, in]. Works for any params the engine runs (GGUF, HF, orbax,
random), APAR vocabulary rows included.
"""

from typing import Any

import ml_collections
import numpy as np


def _np(x: Any) -> np.ndarray:
  return np.array(x, dtype=np.float32)  # a writable copy (torch.from_numpy wants one)


def hf_state_dict(cfg: ml_collections.ConfigDict, params: Any) -> dict[str, np.ndarray]:
  """HF LLaMA tensor name -> fp32 array in torch layout."""
  d = int(cfg.d_model)
  out = {'model.embed_tokens.weight': _np(params['embed']['embedding']),
         'model.norm.weight': _np(params['final_norm']['scale'])}
  for i in range(int(cfg.n_layers)):
    layer, pre = params[f'layers_{i}'], f'model.layers.{i}.'
    attn = layer['attention']
    for name in ('q_proj', 'k_proj', 'v_proj'):
      kernel = _np(attn[name]['kernel'])  # [d, H, D]
      out[pre + f'self_attn.{name}.weight'] = kernel.reshape(d, -1).T
      if cfg.attention_bias:
        out[pre + f'self_attn.{name}.bias'] = _np(attn[name]['bias']).reshape(-1)
    out[pre + 'self_attn.o_proj.weight'] = _np(attn['o_proj']['kernel']).reshape(-1, d).T
    out[pre + 'input_layernorm.weight'] = _np(layer['attention_norm']['scale'])
    out[pre + 'post_attention_layernorm.weight'] = _np(layer['mlp_norm']['scale'])
    for name in ('gate_proj', 'up_proj', 'down_proj'):
      out[pre + f'mlp.{name}.weight'] = _np(layer['mlp'][name]['kernel']).T
  out['lm_head.weight'] = (out['model.embed_tokens.weight'] if cfg.tie_embeddings
                           else _np(params['lm_head']['kernel']).T)
  return out


def hf_llama_config(cfg: ml_collections.ConfigDict) -> Any:
  """The `transformers.LlamaConfig` of our model config (rope 'none' or 'llama3')."""
  import transformers
  rope = {'rope_type': 'default', 'rope_theta': float(cfg.rope_theta)}
  scaling = cfg.get('rope_scaling')
  if scaling is not None and scaling.kind == 'llama3':
    rope.update(rope_type='llama3', factor=float(scaling.factor),
                low_freq_factor=float(scaling.low_freq_factor),
                high_freq_factor=float(scaling.high_freq_factor),
                original_max_position_embeddings=int(scaling.original_max_position))
  elif scaling is not None and scaling.kind != 'none':
    raise ValueError(f'rope scaling {scaling.kind!r} has no transformers equivalent here')
  return transformers.LlamaConfig(
      vocab_size=int(cfg.vocab_size), hidden_size=int(cfg.d_model),
      intermediate_size=int(cfg.ffn_dim), num_hidden_layers=int(cfg.n_layers),
      num_attention_heads=int(cfg.n_heads), num_key_value_heads=int(cfg.n_kv_heads),
      head_dim=int(cfg.head_dim), max_position_embeddings=int(cfg.max_position),
      rms_norm_eps=float(cfg.norm_eps), tie_word_embeddings=bool(cfg.tie_embeddings),
      attention_bias=bool(cfg.attention_bias), rope_parameters=rope, hidden_act='silu')


def to_hf_llama(cfg: ml_collections.ConfigDict, params: Any) -> Any:
  """An fp32 `LlamaForCausalLM` in eval mode holding `params`."""
  import torch
  import transformers
  with torch.device('meta'):
    model = transformers.LlamaForCausalLM(hf_llama_config(cfg))
  state = {k: torch.from_numpy(np.ascontiguousarray(v))
           for k, v in hf_state_dict(cfg, params).items()}
  model.load_state_dict(state, strict=True, assign=True)
  if cfg.tie_embeddings:
    model.tie_weights()
  model.model.rotary_emb = type(model.model.rotary_emb)(model.config)  # buffers off the meta device
  return model.to(torch.float32).eval()
