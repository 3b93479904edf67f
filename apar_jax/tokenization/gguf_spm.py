"""A sentencepiece model rebuilt from a sentencepiece-style GGUF vocabulary
(tokenizer.ggml.model 'llama': pieces with scores, `▁` for spaces, `<0xXX>` byte pieces).

llama.cpp encodes these by repeatedly merging the adjacent pair whose concatenation is the
best-scoring piece: sentencepiece's BPE. So the vocabulary becomes a BPE `ModelProto` with an
identity normalizer (no text normalization, every space kept, one space prefix), run by the
sentencepiece library itself, like a tokenizer.model file.
"""

from __future__ import annotations

from apar_jax.tokenization.gguf_vocab import GGUFVocab
from apar_jax.tokenization.sentencepiece_proto import PieceType, SpecialPieces, build_bpe_model_proto


def sentencepiece_model_from_gguf(vocab: GGUFVocab) -> bytes:
  """Serialized `ModelProto` equal to llama.cpp's tokenizer for this vocabulary."""
  if vocab.scores is None:
    raise ValueError("This GGUF declares a sentencepiece tokenizer ('llama') but has no "
                     "tokenizer.ggml.scores; it cannot be rebuilt. Use the model's tokenizer.model.")
  known = {int(t) for t in PieceType}
  types = [PieceType(t) if t in known else PieceType.NORMAL for t in vocab.token_types]
  unknown = [i for i, t in enumerate(types) if t == PieceType.UNKNOWN]
  if vocab.unk_id is not None and not unknown:
    types[vocab.unk_id] = PieceType.UNKNOWN
    unknown = [vocab.unk_id]
  if len(unknown) != 1:
    raise ValueError(f'A sentencepiece vocabulary needs exactly one unknown token; this GGUF has '
                     f"{len(unknown)}. Use the model's tokenizer.model.")
  name = lambda i: vocab.tokens[i] if i is not None else None  # noqa: E731
  for i in (vocab.bos_id, vocab.eos_id, vocab.pad_id):
    if i is not None and types[i] == PieceType.NORMAL:
      types[i] = PieceType.CONTROL  # sentencepiece only treats control pieces as BOS/EOS/PAD
  special = SpecialPieces(unk=vocab.tokens[unknown[0]], bos=name(vocab.bos_id),
                          eos=name(vocab.eos_id), pad=name(vocab.pad_id))
  return build_bpe_model_proto(
      zip(vocab.tokens, vocab.scores, types), special,
      byte_fallback=PieceType.BYTE in types,
      add_dummy_prefix=True if vocab.add_space_prefix is None else vocab.add_space_prefix)
