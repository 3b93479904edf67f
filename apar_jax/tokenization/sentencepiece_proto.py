"""Sentencepiece `ModelProto`s built and extended with the protobuf classes sentencepiece ships
(`sentencepiece.sentencepiece_model_pb2`)."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from sentencepiece import sentencepiece_model_pb2 as spm_pb2


class PieceType(enum.IntEnum):
  """`SentencePiece.Type` (the same numbers as llama.cpp's GGUF token types)."""
  NORMAL = spm_pb2.ModelProto.SentencePiece.NORMAL
  UNKNOWN = spm_pb2.ModelProto.SentencePiece.UNKNOWN
  CONTROL = spm_pb2.ModelProto.SentencePiece.CONTROL
  USER_DEFINED = spm_pb2.ModelProto.SentencePiece.USER_DEFINED
  UNUSED = spm_pb2.ModelProto.SentencePiece.UNUSED
  BYTE = spm_pb2.ModelProto.SentencePiece.BYTE


def _add_pieces(model: spm_pb2.ModelProto,
                pieces: Iterable[tuple[str, float, PieceType]]) -> None:
  for piece, score, piece_type in pieces:
    model.pieces.add(piece=piece, score=score, type=int(piece_type))


def append_pieces(model_proto: bytes, pieces: Iterable[tuple[str, float, PieceType]]) -> bytes:
  """`model_proto` with `pieces` appended at the end of its vocabulary."""
  model = spm_pb2.ModelProto.FromString(model_proto)
  _add_pieces(model, pieces)
  return model.SerializeToString()


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
  model = spm_pb2.ModelProto()
  _add_pieces(model, pieces)
  trainer = model.trainer_spec
  trainer.model_type = spm_pb2.TrainerSpec.BPE
  trainer.byte_fallback = byte_fallback
  trainer.unk_piece = special.unk
  # An absent piece: a name no vocabulary uses, so sentencepiece reports the id as -1.
  none = '\x00<none>\x00'
  trainer.bos_piece = special.bos if special.bos is not None else none
  trainer.eos_piece = special.eos if special.eos is not None else none
  trainer.pad_piece = special.pad if special.pad is not None else none
  normalizer = model.normalizer_spec
  normalizer.name = 'identity'
  normalizer.add_dummy_prefix = add_dummy_prefix
  normalizer.remove_extra_whitespaces = False
  normalizer.escape_whitespaces = True
  return model.SerializeToString()
