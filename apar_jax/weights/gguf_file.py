"""Opening a GGUF file with the `gguf` package: clear errors, metadata fields, dequantisation to fp32.

Tensors are memory-mapped by `gguf.GGUFReader` and dequantised one at a time; numpy shapes are torch
layout ([out, in]), i.e. the reverse of the GGUF (ggml) shape.
"""

import functools
import os
from typing import Any

import gguf
import numpy as np

from apar_jax.weights.errors import (CorruptFileError, TruncatedFileError,
                                     UnsupportedQuantizationError, WeightsNotFoundError)

GGUF_MAGIC = b'GGUF'
_MISSING = object()


@functools.lru_cache(maxsize=4)
def _parse(path: str, size: int, mtime_ns: int) -> gguf.GGUFReader:
  """Parsing the metadata (tokenizer arrays included) takes seconds: reuse it while the file is
  unchanged (same size and modification time). Tensor data stays memory-mapped, not copied."""
  del size, mtime_ns  # cache key only
  return gguf.GGUFReader(path, 'r')


def open_gguf(path: str) -> gguf.GGUFReader:
  """A reader over `path`, or a specific error for a missing, foreign, truncated or corrupt file."""
  path = os.path.abspath(os.fspath(path))
  if not os.path.exists(path):
    raise WeightsNotFoundError(f'GGUF file {path} does not exist: pass the path of a .gguf file '
                               f'(or use source=default for the built-in SmolLM2)')
  if os.path.isdir(path):
    raise WeightsNotFoundError(f'{path} is a directory, not a GGUF file: pass the .gguf file itself '
                               f'(for a Hugging Face directory use source=hf)')
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    magic = f.read(4)
  if magic != GGUF_MAGIC:
    if len(magic) < 4:
      raise TruncatedFileError(f'{path} is only {size} bytes: the GGUF file is truncated; copy or '
                               f'download it again')
    raise CorruptFileError(f'{path} is not a GGUF file (starts with {magic!r}, not {GGUF_MAGIC!r})')
  try:
    reader = _parse(path, size, os.stat(path).st_mtime_ns)
  except (ValueError, IndexError, OverflowError, KeyError) as e:
    raise TruncatedFileError(
        f'{path} ({size} bytes) could not be parsed ({type(e).__name__}: {e}); the GGUF file is '
        f'truncated or corrupt: copy or download it again') from e
  end = max((int(t.data_offset) + int(t.n_bytes) for t in reader.tensors), default=0)
  if end > size:
    raise TruncatedFileError(f'{path} is truncated: its tensors need {end} bytes but the file has '
                             f'{size}; copy or download it again')
  return reader


def field(reader: gguf.GGUFReader, key: str, default: Any = _MISSING) -> Any:
  """The value of metadata `key` (scalars, strings, arrays), `default` if absent."""
  f = reader.fields.get(key)
  if f is None:
    if default is _MISSING:
      raise CorruptFileError(f'GGUF metadata {key!r} is missing: the file was not written by a '
                             f'LLaMA-aware converter (llama.cpp convert_hf_to_gguf.py)')
    return default
  return f.contents()


@functools.cache
def supported_types() -> frozenset[gguf.GGMLQuantizationType]:
  """Storage types `gguf.quants.dequantize` handles, found by dequantising one zero block of each."""
  ok = set()
  for qtype in gguf.GGMLQuantizationType:
    block_size, type_size = gguf.GGML_QUANT_SIZES.get(qtype, (None, None))
    if block_size is None:
      continue
    try:
      out = gguf.quants.dequantize(np.zeros((1, type_size), np.uint8), qtype)
      if np.asarray(out).dtype.kind == 'f':
        ok.add(qtype)
    except Exception:  # noqa: BLE001 - anything the package cannot do counts as unsupported
      continue
  return frozenset(ok)


def check_tensor_types(reader: gguf.GGUFReader, names: set[str], path: str) -> None:
  """Raises UnsupportedQuantizationError listing every needed tensor in an unsupported type."""
  supported = supported_types()
  bad = [(t.name, t.tensor_type.name) for t in reader.tensors
         if t.name in names and t.tensor_type not in supported]
  if bad:
    raise UnsupportedQuantizationError(
        f'{path}: tensor storage type(s) {sorted({q for _, q in bad})} cannot be dequantised (first '
        f'tensors: {bad[:4]}); supported: {sorted(q.name for q in supported)}. Re-quantise the model '
        f'with llama.cpp (llama-quantize) to a supported type, or load the Hugging Face checkpoint')


def dequantize(tensor: Any) -> np.ndarray:
  """fp32 array of a GGUF tensor in torch layout (numpy shape = reversed GGUF shape)."""
  out = np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
  shape = tuple(int(s) for s in reversed(tensor.shape))
  return out.reshape(shape)
