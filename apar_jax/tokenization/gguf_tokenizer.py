"""Loading the tokenizer a GGUF file describes."""

from __future__ import annotations

from collections.abc import Callable

from tokenizers import Tokenizer

from apar_jax.tokenization.gguf_bpe import build_byte_level_bpe
from apar_jax.tokenization.gguf_spm import build_sentencepiece_bpe
from apar_jax.tokenization.gguf_vocab import GGUFVocab, read_gguf_vocab
from apar_jax.tokenization.hf_tokenizer import HFTokenizer

_BUILDERS: dict[str, Callable[[GGUFVocab], Tokenizer]] = {
    "gpt2": build_byte_level_bpe,        # byte-level BPE (SmolLM2, Llama 3, Qwen2, ...)
    "llama": build_sentencepiece_bpe,    # sentencepiece BPE (LLaMA 1/2, Vicuna, Mistral v0.1, ...)
}


def tokenizer_from_gguf_vocab(vocab: GGUFVocab, *, add_apar_tokens: bool = True) -> HFTokenizer:
    """The `Tokenizer` for an already-read GGUF vocabulary."""
    builder = _BUILDERS.get(vocab.model)
    if builder is None:
        raise NotImplementedError(
            f"GGUF tokenizer model {vocab.model!r} is not supported (supported: "
            f"{', '.join(sorted(_BUILDERS))}). Load the model's tokenizer.json with kind='hf' or its "
            "tokenizer.model with kind='sentencepiece' instead.")
    backend = builder(vocab)
    # llama.cpp's default when the file does not say: BOS for sentencepiece vocabularies only.
    add_bos = vocab.add_bos if vocab.add_bos is not None else vocab.model == "llama"
    extra_stops = [i for i in (vocab.eot_id, vocab.eom_id) if i is not None]
    return HFTokenizer(backend, bos_id=vocab.bos_id, eos_id=vocab.eos_id, pad_id=vocab.pad_id,
                       add_bos_default=add_bos, extra_stop_ids=extra_stops,
                       add_apar_tokens=add_apar_tokens)


def load_gguf_tokenizer(path: str, *, add_apar_tokens: bool = True) -> HFTokenizer:
    """Reads the GGUF file at `path` and builds its tokenizer (no tensor is loaded)."""
    return tokenizer_from_gguf_vocab(read_gguf_vocab(path), add_apar_tokens=add_apar_tokens)
