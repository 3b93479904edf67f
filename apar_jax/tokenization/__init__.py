"""Tokenizers behind one interface, chat templates and the APAR control tokens.

    tok = load_tokenizer('gguf', path_to_gguf)        # or 'hf' (tokenizer.json), 'sentencepiece'
    ids = encode_chat(tok, [{'role': 'user', 'content': 'Hi'}], 'chatml')
    ids = encode_user_prompt(tok, 'Hi', config.tokenizer)   # template + system prompt of a config
    tok.fork_id, tok.child_id, tok.stop_ids, tok.vocab_size, tok.base_vocab_size
"""

from apar_jax.tokenization.base import Tokenizer
from apar_jax.tokenization.chat_templates import (
    SMOLLM2_SYSTEM_PROMPT,
    TEMPLATES,
    VICUNA_SYSTEM_PROMPT,
    apply_chat_template,
    encode_chat,
)
from apar_jax.tokenization.control_tokens import APAR_TOKENS, CHILD_TOKEN, FORK_TOKEN
from apar_jax.tokenization.hf_tokenizer import HFTokenizer
from apar_jax.tokenization.incremental import IncrementalDecoder
from apar_jax.tokenization.loader import KINDS, load_tokenizer
from apar_jax.tokenization.sentencepiece_tokenizer import SentencePieceTokenizer
from apar_jax.tokenization.user_prompt import encode_user_prompt

__all__ = [
    'APAR_TOKENS', 'CHILD_TOKEN', 'FORK_TOKEN', 'KINDS', 'SMOLLM2_SYSTEM_PROMPT', 'TEMPLATES',
    'VICUNA_SYSTEM_PROMPT', 'HFTokenizer', 'IncrementalDecoder', 'SentencePieceTokenizer',
    'Tokenizer', 'apply_chat_template', 'encode_chat', 'encode_user_prompt', 'load_tokenizer',
]
