"""TensorBoard event files for scalar metrics, written without TensorFlow or tensorboard.

An event file is a TFRecord stream of `tensorflow.Event` protos:
  record = uint64 length | uint32 masked_crc32c(length) | payload | uint32 masked_crc32c(payload)
  Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
  Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
The protos are few and fixed, so they are encoded by hand here; `read_scalars` parses them back.
"""

import os
import socket
import struct
import time
from typing import Iterator

_CRC_TABLE: list[int] = []


def _crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), table driven (event files are small)."""
  if not _CRC_TABLE:
    for i in range(256):
      c = i
      for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
      _CRC_TABLE.append(c)
  crc = 0xFFFFFFFF
  for b in data:
    crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
  crc = _crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(n: int) -> bytes:
  n &= (1 << 64) - 1
  out = bytearray()
  while True:
    byte = n & 0x7F
    n >>= 7
    if n:
      out.append(byte | 0x80)
    else:
      out.append(byte)
      return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
  return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def encode_event(wall_time: float, step: int, scalars: dict[str, float] | None = None,
                 file_version: str | None = None) -> bytes:
  """The serialized Event proto."""
  msg = _varint(1 << 3 | 1) + struct.pack('<d', wall_time) + _varint(2 << 3 | 0) + _varint(step)
  if file_version is not None:
    msg += _length_delimited(3, file_version.encode())
  if scalars:
    values = b''.join(
        _length_delimited(1, _length_delimited(1, tag.encode()) + _varint(2 << 3 | 5)
                          + struct.pack('<f', float(value)))
        for tag, value in scalars.items())
    msg += _length_delimited(5, values)
  return msg


def _record(payload: bytes) -> bytes:
  header = struct.pack('<Q', len(payload))
  return (header + struct.pack('<I', _masked_crc(header)) + payload
          + struct.pack('<I', _masked_crc(payload)))


class EventWriter:
  """Appends scalar summaries to a new `events.out.tfevents.*` file in `log_dir`."""

  def __init__(self, log_dir: str):
    os.makedirs(log_dir, exist_ok=True)
    name = f'events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}'
    self.path = os.path.join(log_dir, name)
    self._file = open(self.path, 'ab')
    self._file.write(_record(encode_event(time.time(), 0, file_version='brain.Event:2')))
    self._file.flush()

  def scalars(self, step: int, values: dict[str, float]) -> None:
    self._file.write(_record(encode_event(time.time(), step, values)))
    self._file.flush()

  def close(self) -> None:
    self._file.close()


# ---- reading back (tests, plots) ------------------------------------------------------------------
def _read_varint(buf: bytes, i: int) -> tuple[int, int]:
  shift = result = 0
  while True:
    b = buf[i]
    i += 1
    result |= (b & 0x7F) << shift
    shift += 7
    if not b & 0x80:
      return result, i


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
  i = 0
  while i < len(buf):
    key, i = _read_varint(buf, i)
    field, wire = key >> 3, key & 7
    if wire == 0:
      value, i = _read_varint(buf, i)
    elif wire == 1:
      value, i = buf[i:i + 8], i + 8
    elif wire == 5:
      value, i = buf[i:i + 4], i + 4
    elif wire == 2:
      n, i = _read_varint(buf, i)
      value, i = buf[i:i + n], i + n
    else:
      raise ValueError(f'unsupported protobuf wire type {wire}')
    yield field, wire, value


def read_scalars(path: str) -> list[tuple[int, str, float]]:
  """(step, tag, value) of every scalar in an event file; checks every CRC."""
  with open(path, 'rb') as f:
    data = f.read()
  out, i = [], 0
  while i < len(data):
    header = data[i:i + 8]
    (n,) = struct.unpack('<Q', header)
    if struct.unpack('<I', data[i + 8:i + 12])[0] != _masked_crc(header):
      raise ValueError(f'{path}: bad length CRC at byte {i}')
    payload = data[i + 12:i + 12 + n]
    if struct.unpack('<I', data[i + 12 + n:i + 16 + n])[0] != _masked_crc(payload):
      raise ValueError(f'{path}: bad payload CRC at byte {i}')
    i += 16 + n
    step = 0
    for field, _, value in _fields(payload):
      if field == 2:
        step = value
      elif field == 5:
        for _, _, v in _fields(value):
          parts = {f: val for f, _, val in _fields(v)}
          out.append((step, parts[1].decode(), struct.unpack('<f', parts[2])[0]))
  return out
