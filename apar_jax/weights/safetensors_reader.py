"""Memory-mapped reading of a directory of `.safetensors` files (single or sharded with an index).

The format is an 8-byte little-endian header length N, N bytes of JSON
(`name -> {dtype, shape, data_offsets: [begin, end]}`), then the raw little-endian data. We parse it
ourselves so that every tensor is a zero-copy view of a memory map, bf16 works through ml_dtypes, and a
truncated file is caught from its header before any data is used.
"""

import glob
import json
import os
import struct
from typing import Any

import ml_dtypes
import numpy as np

from apar_jax.weights.errors import (CorruptFileError, MissingTensorError, TruncatedFileError,
                                     UnsupportedQuantizationError, WeightsNotFoundError)

INDEX_NAME = 'model.safetensors.index.json'
DTYPES = {
    'F64': np.dtype('<f8'), 'F32': np.dtype('<f4'), 'F16': np.dtype('<f2'),
    'BF16': np.dtype(ml_dtypes.bfloat16),
}


def _read_header(path: str) -> tuple[dict[str, Any], int]:
  """(tensor entries, byte offset of the data section) of one .safetensors file."""
  size = os.path.getsize(path)
  with open(path, 'rb') as f:
    head = f.read(8)
    if len(head) < 8:
      raise TruncatedFileError(f'{path} is {size} bytes, too short for a safetensors header: the file '
                               f'is truncated; copy or download it again')
    (n,) = struct.unpack('<Q', head)
    if 8 + n > size:
      raise TruncatedFileError(
          f'{path} announces a {n}-byte header but has only {size} bytes: the file is truncated '
          f'(or not a safetensors file); copy or download it again')
    raw = f.read(n)
  try:
    header = json.loads(raw)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise CorruptFileError(f'{path}: the safetensors header is not valid JSON ({e}): the file is '
                           f'corrupt; copy or download it again') from e
  header.pop('__metadata__', None)
  data_start = 8 + n
  end = max((int(e['data_offsets'][1]) for e in header.values()), default=0)
  if data_start + end > size:
    raise TruncatedFileError(
        f'{path} is truncated: its header needs {data_start + end} bytes but the file has {size} '
        f'({data_start + end - size} missing); copy or download it again')
  return header, data_start


class SafetensorsDir:
  """Tensors of a checkpoint directory by name, each read as a memory-mapped numpy view."""

  def __init__(self, directory: str):
    self.directory = directory
    self._entries: dict[str, tuple[str, dict[str, Any], int]] = {}  # name -> (file, entry, start)
    self._maps: dict[str, np.memmap] = {}
    for path in self._files():
      header, start = _read_header(path)
      for name, entry in header.items():
        self._entries[name] = (path, entry, start)
    self._check_index()

  def _files(self) -> list[str]:
    index = os.path.join(self.directory, INDEX_NAME)
    if os.path.isfile(index):
      with open(index, encoding='utf-8') as f:
        try:
          self._weight_map = json.load(f)['weight_map']
        except (json.JSONDecodeError, KeyError) as e:
          raise CorruptFileError(f'{index} is not a valid safetensors index ({e!r}): restore it from '
                                 f'the original checkpoint') from e
      files = sorted(set(self._weight_map.values()))
      missing = [f for f in files if not os.path.isfile(os.path.join(self.directory, f))]
      if missing:
        raise WeightsNotFoundError(
            f'{self.directory}: shard(s) {missing} listed in {INDEX_NAME} are missing: copy or '
            f'download every shard of the checkpoint')
      return [os.path.join(self.directory, f) for f in files]
    self._weight_map = None
    files = sorted(glob.glob(os.path.join(self.directory, '*.safetensors')))
    if not files:
      other = [os.path.basename(p) for p in glob.glob(os.path.join(self.directory, '*.bin'))
               + glob.glob(os.path.join(self.directory, '*.pth'))]
      hint = (f' (found {other}: re-save them as safetensors with transformers\' '
              f'save_pretrained(..., safe_serialization=True))' if other else '')
      raise WeightsNotFoundError(f'{self.directory} has no *.safetensors files{hint}')
    return files

  def _check_index(self) -> None:
    if self._weight_map is None:
      return
    for name, file in self._weight_map.items():
      if name not in self._entries:
        raise CorruptFileError(f'{self.directory}: {INDEX_NAME} puts {name!r} in {file}, which does '
                               f'not contain it: the index and shards are from different checkpoints')

  def __contains__(self, name: str) -> bool:
    return name in self._entries

  def names(self) -> list[str]:
    return list(self._entries)

  def read(self, name: str) -> np.ndarray:
    """The tensor `name` as a read-only memory-mapped array (torch layout, stored dtype)."""
    if name not in self._entries:
      raise MissingTensorError(
          f'{self.directory} has no tensor {name!r}: the checkpoint is incomplete or its config.json '
          f'does not describe it (e.g. tie_word_embeddings=false but no lm_head.weight)')
    path, entry, start = self._entries[name]
    dtype = DTYPES.get(entry['dtype'])
    if dtype is None:
      raise UnsupportedQuantizationError(
          f'{path}: tensor {name!r} has dtype {entry["dtype"]}; supported: {sorted(DTYPES)}. Use an '
          f'unquantised (fp32/fp16/bf16) checkpoint')
    begin, end = (int(x) for x in entry['data_offsets'])
    shape = tuple(int(s) for s in entry['shape'])
    if end - begin != int(np.prod(shape)) * dtype.itemsize:
      raise CorruptFileError(f'{path}: tensor {name!r} has {end - begin} bytes for shape {shape} '
                             f'{entry["dtype"]}: the file is corrupt; copy or download it again')
    if path not in self._maps:
      self._maps[path] = np.memmap(path, dtype=np.uint8, mode='r')
    return self._maps[path][start + begin:start + end].view(dtype).reshape(shape)
