"""Reads a Hugging Face `config.json` of a LLaMA-family model into our model config."""

import json
import os
from typing import Any

import ml_collections

from apar_jax.weights.errors import (CorruptFileError, UnsupportedArchitectureError,
                                     UnsupportedQuantizationError, WeightsNotFoundError)
from apar_jax.weights.model_config import make_model_config

SUPPORTED_MODEL_TYPES = ('llama',)
SUPPORTED_ROPE_TYPES = ('default', 'llama3')


def check_hf_dir(directory: str) -> str:
  """The absolute directory, or a WeightsNotFoundError saying what a checkpoint directory needs."""
  directory = os.path.abspath(os.fspath(directory))
  if not os.path.exists(directory):
    raise WeightsNotFoundError(
        f'Hugging Face checkpoint directory {directory} does not exist: pass a directory holding '
        f'config.json and *.safetensors (as written by save_pretrained)')
  if not os.path.isdir(directory):
    raise WeightsNotFoundError(
        f'{directory} is a file, not a Hugging Face checkpoint directory: pass the directory holding '
        f'config.json and *.safetensors (for a .gguf file use the GGUF importer / source=gguf)')
  if not os.path.isfile(os.path.join(directory, 'config.json')):
    raise WeightsNotFoundError(
        f'{directory} has no config.json: a Hugging Face checkpoint directory needs config.json next '
        f'to its *.safetensors files')
  return directory


def read_hf_config(directory: str) -> dict[str, Any]:
  """The parsed config.json of a checkpoint directory."""
  path = os.path.join(check_hf_dir(directory), 'config.json')
  try:
    with open(path, encoding='utf-8') as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise CorruptFileError(f'{path} is not valid JSON ({e}): restore the file from the original '
                           f'checkpoint') from e


def _rope(hf: dict[str, Any]) -> tuple[float, dict[str, Any]]:
  """(theta, scaling dict) from transformers 5 `rope_parameters` or 4.x `rope_theta`/`rope_scaling`."""
  params = dict(hf.get('rope_parameters') or {})
  scaling = dict(hf.get('rope_scaling') or {})
  theta = params.get('rope_theta', hf.get('rope_theta', 10000.0))
  merged = {**scaling, **params}
  kind = merged.get('rope_type', merged.get('type', 'default')) or 'default'
  if kind not in SUPPORTED_ROPE_TYPES:
    raise UnsupportedArchitectureError(
        f'rope scaling type {kind!r} is not supported (supported: {SUPPORTED_ROPE_TYPES}); remove '
        f'rope_scaling from config.json only if the model was trained without it')
  merged['rope_type'] = kind
  return float(theta), merged


def model_config_from_hf(directory: str) -> ml_collections.ConfigDict:
  """Our model config for a HF LLaMA checkpoint directory; vocab = the checkpoint's (not grown)."""
  hf = read_hf_config(directory)
  model_type = hf.get('model_type')
  archs = hf.get('architectures') or []
  if model_type not in SUPPORTED_MODEL_TYPES:
    raise UnsupportedArchitectureError(
        f'{directory}: model_type {model_type!r} (architectures {archs}) is not supported: only '
        f'LLaMA-family decoders (model_type in {SUPPORTED_MODEL_TYPES}, e.g. LlamaForCausalLM) can be '
        f'loaded; pick a LLaMA-architecture checkpoint')
  if hf.get('quantization_config'):
    method = hf['quantization_config'].get('quant_method', '?')
    raise UnsupportedQuantizationError(
        f'{directory}: HF-quantised checkpoints ({method}) are not supported: use the unquantised '
        f'(fp32/fp16/bf16) checkpoint, or a GGUF file')
  if hf.get('hidden_act', 'silu') != 'silu':
    raise UnsupportedArchitectureError(
        f"{directory}: hidden_act {hf['hidden_act']!r} is not supported (the model's MLP is SwiGLU)")
  if hf.get('mlp_bias', False):
    raise UnsupportedArchitectureError(f'{directory}: mlp_bias=true is not supported (no MLP biases)')
  theta, rope = _rope(hf)
  n_heads = int(hf['num_attention_heads'])
  d_model = int(hf['hidden_size'])
  kind = 'none' if rope['rope_type'] == 'default' else 'llama3'
  return make_model_config(
      vocab_size=hf['vocab_size'], d_model=d_model, n_layers=hf['num_hidden_layers'],
      n_heads=n_heads, n_kv_heads=hf.get('num_key_value_heads') or n_heads,
      head_dim=hf.get('head_dim') or d_model // n_heads, ffn_dim=hf['intermediate_size'],
      rope_theta=theta, norm_eps=hf.get('rms_norm_eps', 1e-6),
      tie_embeddings=hf.get('tie_word_embeddings', False),
      attention_bias=hf.get('attention_bias', False),
      max_position=hf.get('max_position_embeddings', 4096),
      rope_kind=kind, rope_factor=rope.get('factor', 8.0),
      rope_low_freq_factor=rope.get('low_freq_factor', 1.0),
      rope_high_freq_factor=rope.get('high_freq_factor', 4.0),
      rope_original_max_position=rope.get('original_max_position_embeddings', 8192))
