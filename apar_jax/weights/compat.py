"""Checks that a checkpoint's own model config agrees with the model config it is loaded into."""

import math

import ml_collections

from apar_jax.weights.errors import ConfigMismatchError, ShapeMismatchError

SHAPE_FIELDS = ('d_model', 'n_layers', 'n_heads', 'n_kv_heads', 'head_dim', 'ffn_dim')
FLOAT_FIELDS = ('rope_theta', 'norm_eps')
FLAG_FIELDS = ('tie_embeddings', 'attention_bias')
LLAMA3_FIELDS = ('factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position')
REL_TOL = 1e-5  # GGUF stores eps/theta as float32: 1e-5 arrives as 9.9999997e-06


def _fix(field: str, value) -> str:
  return f'set --config.model.{field}={value!r} (or build the config with model_config_from_hf/gguf)'


def check_compatible(ckpt: ml_collections.ConfigDict, model: ml_collections.ConfigDict,
                     source: str) -> None:
  """Raises if `model` cannot hold the weights described by `ckpt` (the checkpoint's own config).

  The model's vocabulary may be larger (it is grown for the APAR control tokens), never smaller.
  """
  for field in SHAPE_FIELDS:
    if int(ckpt[field]) != int(model[field]):
      raise ShapeMismatchError(
          f'{source} has {field}={ckpt[field]} but the model config says {model[field]}: '
          + _fix(field, int(ckpt[field])))
  if int(ckpt.vocab_size) > int(model.vocab_size):
    raise ShapeMismatchError(
        f'{source} has vocab_size={ckpt.vocab_size}, larger than the model config\'s '
        f'{model.vocab_size}: set --config.model.vocab_size to at least {ckpt.vocab_size} (the '
        f'checkpoint vocabulary plus 2 for the APAR control tokens [Fork] and [Child])')
  for field in FLAG_FIELDS:
    if bool(ckpt[field]) != bool(model[field]):
      raise ConfigMismatchError(
          f'{source} has {field}={bool(ckpt[field])} but the model config says {bool(model[field])}: '
          + _fix(field, bool(ckpt[field])))
  for field in FLOAT_FIELDS:
    if not math.isclose(float(ckpt[field]), float(model[field]), rel_tol=REL_TOL):
      raise ConfigMismatchError(
          f'{source} has {field}={float(ckpt[field])} but the model config says '
          f'{float(model[field])}; the logits would be wrong: ' + _fix(field, float(ckpt[field])))
  ckpt_rs, model_rs = ckpt.rope_scaling, model.rope_scaling
  if ckpt_rs.kind != model_rs.kind:
    raise ConfigMismatchError(
        f'{source} uses rope_scaling.kind={ckpt_rs.kind!r} but the model config says '
        f'{model_rs.kind!r}: ' + _fix('rope_scaling.kind', ckpt_rs.kind))
  if ckpt_rs.kind == 'llama3':
    for field in LLAMA3_FIELDS:
      if not math.isclose(float(ckpt_rs[field]), float(model_rs[field]), rel_tol=REL_TOL):
        raise ConfigMismatchError(
            f'{source} has rope_scaling.{field}={ckpt_rs[field]} but the model config says '
            f'{model_rs[field]}: ' + _fix(f'rope_scaling.{field}', ckpt_rs[field]))
