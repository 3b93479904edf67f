"""`convert`: a Hugging Face directory or GGUF file -> an orbax checkpoint of our params.

The model config travels with the params (orbax custom metadata, see `saved_model_config`), so the
result loads with `--config.weights.source=orbax --config.weights.path=OUT_DIR`.
"""

import time
from typing import Optional

import ml_collections
from absl import logging

from apar_jax.weights.default_model import default_gguf_path
from apar_jax.weights.errors import WeightsError
from apar_jax.weights.gguf_import import load_gguf, model_config_from_gguf
from apar_jax.weights.hf_config import model_config_from_hf
from apar_jax.weights.hf_safetensors import load_hf_checkpoint
from apar_jax.weights.orbax_io import save_params

CONVERT_SOURCES = ('hf', 'gguf', 'default')


def convert(source_kind: str, source_path: Optional[str], out_dir: str,
            model_cfg: Optional[ml_collections.ConfigDict] = None, *, overwrite: bool = False,
            progress: bool = True) -> str:
  """Converts `source_path` ('hf' directory, 'gguf' file, or 'default' = SmolLM2) to `out_dir`.

  `model_cfg` defaults to the checkpoint's own (vocab not grown); pass one with a larger vocab_size to
  add the APAR control-token rows. Returns the absolute output directory.
  """
  start = time.perf_counter()
  if source_kind == 'default':
    source_kind, source_path = 'gguf', default_gguf_path()
  if source_kind == 'hf':
    model_cfg = model_cfg if model_cfg is not None else model_config_from_hf(source_path)
    params = load_hf_checkpoint(source_path, model_cfg, progress=progress)
  elif source_kind == 'gguf':
    model_cfg = model_cfg if model_cfg is not None else model_config_from_gguf(source_path)
    params = load_gguf(source_path, model_cfg, progress=progress)
  else:
    raise WeightsError(f'cannot convert from {source_kind!r}: use one of {CONVERT_SOURCES}')
  out = save_params(out_dir, params, model_cfg=model_cfg, overwrite=overwrite)
  logging.info('converted %s -> %s in %.1f s', source_path, out, time.perf_counter() - start)
  return out
