"""Loading the tokenizer a GGUF file describes."""

from __future__ import annotations

from apar_jax.tokenization.base import Tokenizer
from apar_jax.tokenization.gguf_bpe import build_byte_level_bpe
from apar_jax.tokenization.gguf_spm import sentencepiece_model_from_gguf
from apar_jax.tokenization.gguf_vocab import GGUFVocab, read_gguf_vocab
from apar_jax.tokenization.hf_tokenizer import HFTokenizer
from apar_jax.tokenization.sentencepiece_tokenizer import SentencePieceTokenizer

SUPPORTED_MODELS: tuple[str, ...] = ('gpt2', 'llama')


def tokenizer_from_gguf_vocab(vocab: GGUFVocab, *, add_apar_tokens: bool = True) -> Tokenizer:
  """The `Tokenizer` for an already-read GGUF vocabulary.

  'gpt2' (byte-level BPE: SmolLM2, Llama 3, Qwen2, ...) becomes a Hugging Face `tokenizers` BPE;
  'llama' (sentencepiece: LLaMA 1/2, Vicuna, Mistral v0.1, ...) a sentencepiece model.
  """
  # llama.cpp's default when the file does not say: BOS for sentencepiece vocabularies only.
  add_bos = vocab.add_bos if vocab.add_bos is not None else vocab.model == 'llama'
  extra_stops = [i for i in (vocab.eot_id, vocab.eom_id) if i is not None]
  if vocab.model == 'gpt2':
    return HFTokenizer(build_byte_level_bpe(vocab), bos_id=vocab.bos_id, eos_id=vocab.eos_id,
                       pad_id=vocab.pad_id, add_bos_default=add_bos, extra_stop_ids=extra_stops,
                       add_apar_tokens=add_apar_tokens)
  if vocab.model == 'llama':
    try:
      return SentencePieceTokenizer(sentencepiece_model_from_gguf(vocab), add_bos_default=add_bos,
                                    extra_stop_ids=extra_stops, add_apar_tokens=add_apar_tokens)
    except RuntimeError as e:  # sentencepiece rejected the rebuilt model
      raise ValueError(f'Could not rebuild a sentencepiece model from this GGUF: {e}. Use the '
                       "model's tokenizer.model with kind='sentencepiece'.") from e
  raise NotImplementedError(
      f'GGUF tokenizer model {vocab.model!r} is not supported (supported: '
      f"{', '.join(SUPPORTED_MODELS)}). Load the model's tokenizer.json with kind='hf' or its "
      "tokenizer.model with kind='sentencepiece' instead.")


def load_gguf_tokenizer(path: str, *, add_apar_tokens: bool = True) -> Tokenizer:
  """Reads the GGUF file at `path` and builds its tokenizer (no tensor is loaded)."""
  return tokenizer_from_gguf_vocab(read_gguf_vocab(path), add_apar_tokens=add_apar_tokens)
