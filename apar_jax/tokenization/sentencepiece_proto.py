"""Writing sentencepiece `ModelProto` bytes by hand (the few fields we need; no protobuf package).

Field numbers are those of sentencepiece_model.proto. Protobuf concatenates repeated fields in the
order they appear, so pieces appended to a serialized model land at the end of its vocabulary.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Iterable


class PieceType(enum.IntEnum):
  """`SentencePiece.Type` (the same numbers as llama.cpp's GGUF token types)."""
  NORMAL = 1
  UNKNOWN = 2
  CONTROL = 3
  USER_DEFINED = 4
  UNUSED = 5
  BYTE = 6


_BPE = 2  # TrainerSpec.ModelType.BPE


def _varint(n: int) -> bytes:
  n &= (1 << 64) - 1  # negative int32 values are written as 64-bit two's complement
  out = bytearray()
  while True:
    byte, n = n & 0x7F, n >> 7
    out.append(byte | (0x80 if n else 0))
    if not n:
      return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
  return _varint(field << 3 | wire_type)


def _bytes_field(field: int, value: bytes) -> bytes:
  return _tag(field, 2) + _varint(len(value)) + value


def _string_field(field: int, value: str) -> bytes:
  return _bytes_field(field, value.encode('utf-8'))


def _int_field(field: int, value: int) -> bytes:
  return _tag(field, 0) + _varint(value)


def encode_piece(piece: str, score: float, piece_type: PieceType) -> bytes:
  """One `ModelProto.pieces` entry (field 1), ready to concatenate to a serialized model."""
  body = _string_field(1, piece) + _tag(2, 5) + struct.pack('<f', score) + _int_field(3, piece_type)
  return _bytes_field(1, body)


def append_pieces(model_proto: bytes, pieces: Iterable[tuple[str, float, PieceType]]) -> bytes:
  """`model_proto` with `pieces` appended at the end of its vocabulary."""
  return model_proto + b''.join(encode_piece(*p) for p in pieces)


@dataclasses.dataclass(frozen=True)
class SpecialPieces:
  """Names of the special pieces (sentencepiece finds bos/eos/pad ids by name, and they must be
  CONTROL pieces); None when the vocabulary has no such piece."""
  unk: str
  bos: str | None
  eos: str | None
  pad: str | None


def build_bpe_model_proto(pieces: Iterable[tuple[str, float, PieceType]], special: SpecialPieces, *,
                          byte_fallback: bool, add_dummy_prefix: bool) -> bytes:
  """A BPE `ModelProto` with an identity normalizer that keeps every space (as LLaMA's has)."""
  trainer = _int_field(3, _BPE) + _int_field(35, byte_fallback) + _string_field(45, special.unk)
  for field, name in ((46, special.bos), (47, special.eos), (48, special.pad)):
    # An absent piece: a name no vocabulary uses, so sentencepiece reports the id as -1.
    trainer += _string_field(field, name if name is not None else '\x00<none>\x00')
  normalizer = (_string_field(1, 'identity') + _int_field(3, add_dummy_prefix)
                + _int_field(4, False) + _int_field(5, True))
  return b''.join(encode_piece(*p) for p in pieces) + _bytes_field(2, trainer) + _bytes_field(3, normalizer)
