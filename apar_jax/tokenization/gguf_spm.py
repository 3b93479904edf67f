"""Building a `tokenizers.Tokenizer` from a sentencepiece-style GGUF vocabulary
(tokenizer.ggml.model 'llama': pieces with scores, `▁` for spaces, `<0xXX>` byte pieces).

llama.cpp encodes these by repeatedly merging the adjacent pair whose concatenation is the
best-scoring piece (sentencepiece BPE). A BPE model whose merges are every split of every piece,
ranked by that piece's score, does the same. Unigram-trained vocabularies (T5 and the like) are not
covered by this: their GGUFs say 't5' and are rejected by the loader.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers

from apar_jax.tokenization.gguf_bpe import register_gguf_added_tokens
from apar_jax.tokenization.gguf_vocab import GGUFVocab, TokenType

SPACE = "\u2581"  # sentencepiece's visible space


def _ranked_merges(vocab: GGUFVocab) -> list[tuple[str, str]]:
    """Every (left, right) whose concatenation is a NORMAL piece, best merged score first."""
    assert vocab.scores is not None
    ids = {t: i for i, t in enumerate(vocab.tokens)}
    normal = {t for t, k in zip(vocab.tokens, vocab.token_types) if k == TokenType.NORMAL}
    ranked = []
    for token in normal:
        for cut in range(1, len(token)):
            left, right = token[:cut], token[cut:]
            if left in normal and right in normal:
                ranked.append((-vocab.scores[ids[token]], ids[left], ids[right], left, right))
    ranked.sort()
    return [(left, right) for *_, left, right in ranked]


def build_sentencepiece_bpe(vocab: GGUFVocab) -> Tokenizer:
    """A tokenizer equal to llama.cpp's for this sentencepiece-style vocabulary."""
    if vocab.scores is None:
        raise ValueError("This GGUF declares a sentencepiece tokenizer ('llama') but has no "
                         "tokenizer.ggml.scores; it cannot be rebuilt. Use the model's tokenizer.model.")
    ids: dict[str, int] = {}
    for i, token in enumerate(vocab.tokens):
        if ids.setdefault(token, i) != i:
            raise ValueError(f"GGUF vocabulary spells ids {ids[token]} and {i} both {token!r}; a "
                             "tokenizer cannot keep both. Use the model's tokenizer.model.")
    has_bytes = any(k == TokenType.BYTE for k in vocab.token_types)
    unk = vocab.tokens[vocab.unk_id] if vocab.unk_id is not None else None
    tokenizer = Tokenizer(models.BPE(ids, _ranked_merges(vocab), unk_token=unk, fuse_unk=True,
                                     byte_fallback=has_bytes))
    space_prefix = True if vocab.add_space_prefix is None else vocab.add_space_prefix
    # Normalizers run on each stretch of text between added tokens, so the space prefix is added at
    # the start and after every special token, as llama.cpp does.
    steps = [normalizers.Prepend(SPACE)] if space_prefix else []
    tokenizer.normalizer = normalizers.Sequence([*steps, normalizers.Replace(" ", SPACE)])
    tokenizer.pre_tokenizer = None
    steps = [decoders.Replace(SPACE, " "), decoders.ByteFallback(), decoders.Fuse()]
    if space_prefix:
        steps.append(decoders.Strip(content=" ", left=1, right=0))
    tokenizer.decoder = decoders.Sequence(steps)
    register_gguf_added_tokens(tokenizer, vocab)
    return tokenizer
