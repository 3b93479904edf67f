"""Loads a Hugging Face LLaMA checkpoint directory (config.json + *.safetensors) into our params."""

from typing import Any, Optional

import ml_collections
import numpy as np

from apar_jax.weights.compat import check_compatible
from apar_jax.weights.errors import UnsupportedArchitectureError
from apar_jax.weights.hf_config import check_hf_dir, model_config_from_hf
from apar_jax.weights.param_layout import Params, assemble_params, hf_tensor_plan
from apar_jax.weights.safetensors_reader import SafetensorsDir
from apar_jax.weights.vocab import fit_vocab


def _check_o_proj_bias(tensors: SafetensorsDir, n_layers: int, directory: str) -> None:
  """HF LLaMA with attention_bias also has an o_proj bias; ours has none, so it must be all zero."""
  for i in range(n_layers):
    name = f'model.layers.{i}.self_attn.o_proj.bias'
    if name in tensors and np.any(tensors.read(name)):
      raise UnsupportedArchitectureError(
          f'{directory}: {name} is non-zero, but the model has no output-projection bias (only q/k/v '
          f'biases); this checkpoint cannot be loaded exactly')


def load_hf_checkpoint(directory: str, model_cfg: ml_collections.ConfigDict, *,
                       dtype: Optional[Any] = None, shardings: Any = None,
                       progress: bool = True) -> Params:
  """Params for `model_cfg` from a HF checkpoint directory, in `dtype` (default model param_dtype).

  The model's vocabulary may exceed the checkpoint's (rows are added by `grow_vocab`); every other
  shape and hyperparameter must agree. `shardings` (optional pytree) places leaves as they load.
  """
  directory = check_hf_dir(directory)
  ckpt_cfg = model_config_from_hf(directory)
  check_compatible(ckpt_cfg, model_cfg, f'HF checkpoint {directory}')
  tensors = SafetensorsDir(directory)
  if ckpt_cfg.attention_bias:
    _check_o_proj_bias(tensors, ckpt_cfg.n_layers, directory)
  plan = hf_tensor_plan(model_cfg, vocab_size=ckpt_cfg.vocab_size)
  params = assemble_params(plan, tensors.read, dtype or model_cfg.param_dtype, shardings=shardings,
                           source_name=directory, progress=progress)
  return fit_vocab(params, model_cfg, shardings)
