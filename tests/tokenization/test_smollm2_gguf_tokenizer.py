"""Our tokenizer built from the SmolLM2 GGUF against transformers' tokenizer from the same file."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from apar_jax.tokenization import CHILD_TOKEN, FORK_TOKEN
from apar_jax.tokenization.gguf_bpe import byte_to_char
from apar_jax.tokenization.gguf_tokenizer import tokenizer_from_gguf_vocab

pytestmark = pytest.mark.smollm2

SAMPLES = [
    '', ' ', '  ', '\n', '\n\n', '\t\t x', 'Hello, world!', '  leading and trailing  ', 'a  b   c    d',
    "don't I'm you're we've they'll she'd IT'S", 'Numbers 12345 and 3.14159 and 1,000,000.',
    'x 1', '(1)', 'a1b2c3', '²³½ ٣٤ ５６', 'Café naïve résumé façade Ångström', '你好，世界！这是一个测试。',
    '日本語のテキスト ー', '한국어 텍스트', 'Россия и Україна', 'مرحبا بالعالم', '😀👍🏽🇺🇸 ❤️',
    'def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n',
    'print("a\\tb") && echo $HOME || {x: [1, 2]}',
    '1. Title: details.\n2. Second: more details.',
    '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', '<|endoftext|><repo_name>x',
    'a[Fork]b', '1. Title:[Fork]\n\n2. Next:[Fork]', '[Fork][Child][Fork]', '[[Fork]]', ' [Child] x',
    '[Fork', 'Fork]', '\u00a0nbsp\u2009thin\u3000ideographic', 'zero\u200bwidth', 'e\u0301 combining',
]

TEXT = st.text(alphabet=st.characters(blacklist_categories=('Cs',)), max_size=40)
PIECES = st.lists(st.one_of(TEXT, st.sampled_from(
    [' ', '  ', '\n', '\n\n', '\t', '123', ' 4', '1. ', 'x', 'é', '😀', FORK_TOKEN, CHILD_TOKEN,
     '<|im_start|>', '<|im_end|>', "'s", 'def ', '    '])), max_size=10).map(''.join)


def _representable(tok, text: str) -> bool:
  """Every UTF-8 byte of `text` has a token. SmolLM2 lacks 21 byte tokens (0xC0, 0xC1, 0xF1..0xFF
  and some ASCII control characters); both tokenizers silently drop such bytes."""
  return all(tok.token_to_id(byte_to_char()[b]) is not None for b in set(text.encode('utf-8')))


def _splits_differ(text: str) -> bool:
  """Where transformers' GGUF tokenizer and SmolLM2's own split may differ: whitespace before a
  number, unless it is one whitespace character before an ASCII digit."""
  return any(text[i].isspace() and text[i + 1].isnumeric()
             and (not text[i + 1].isascii() or (i > 0 and text[i - 1].isspace()))
             for i in range(len(text) - 1))


def test_vocabulary_facts(smollm2):
  assert smollm2.base_vocab_size == 49152
  assert (smollm2.fork_id, smollm2.child_id, smollm2.vocab_size) == (49152, 49153, 49154)
  assert (smollm2.bos_id, smollm2.eos_id, smollm2.pad_id) == (1, 2, 2)
  assert smollm2.id_to_token(1) == '<|im_start|>' and smollm2.token_to_id('<|im_end|>') == 2
  assert smollm2.stop_ids == (2, 0)  # <|im_end|>, <|endoftext|>
  assert not smollm2.add_bos_default
  assert smollm2.token_to_id('no such token') is None


def test_without_apar_tokens(smollm2_vocab):
  tok = tokenizer_from_gguf_vocab(smollm2_vocab, add_apar_tokens=False)
  assert tok.vocab_size == tok.base_vocab_size == 49152
  assert tok.fork_id is None and tok.encode('[Fork]') != [49152]


@pytest.mark.parametrize('text', SAMPLES)
def test_encode_decode_match_transformers(smollm2, hf_smollm2, text):
  ids = smollm2.encode(text)
  if not _splits_differ(text):
    assert ids == hf_smollm2.encode(text, add_special_tokens=False)
  assert smollm2.decode(ids, skip_special=False) == hf_smollm2.decode(ids) == text
  assert smollm2.decode(ids) == hf_smollm2.decode(ids, skip_special_tokens=True)


@settings(max_examples=400, deadline=None)
@given(text=PIECES)
def test_encode_matches_transformers_on_random_text(smollm2, hf_smollm2, hf_with_smollm2_split, text):
  ids = smollm2.encode(text)
  assert ids == hf_with_smollm2_split.encode(text, add_special_tokens=False).ids
  if not _splits_differ(text):
    assert ids == hf_smollm2.encode(text, add_special_tokens=False)
  assert smollm2.decode(ids) == hf_smollm2.decode(ids, skip_special_tokens=True)
  if _representable(smollm2, text):
    assert smollm2.decode(ids, skip_special=False) == text


def test_whitespace_before_digits_follows_smollm2_not_transformers(smollm2, hf_smollm2):
  """SmolLM2 was trained with each number character split off before the GPT-2 split (its
  tokenizer.json; llama.cpp's 'smollm' pre-tokenizer). transformers builds a plain GPT-2 split from
  the GGUF, so a blank line before a numbered item comes out as two newline tokens there and one
  here (the split APAR's numbered lists are made of), and a space before `²` joins it there."""
  text = 'Steps:\n\n1. Mix ².'
  ours, theirs = smollm2.encode(text), hf_smollm2.encode(text, add_special_tokens=False)
  spell = lambda ids: [smollm2.id_to_token(i) for i in ids]  # noqa: E731
  assert spell(ours) == ['Steps', ':', 'ĊĊ', '1', '.', 'ĠMix', 'Ġ', 'Â²', '.']
  assert spell(theirs) == ['Steps', ':', 'Ċ', 'Ċ', '1', '.', 'ĠMix', 'ĠÂ', '²', '.']
  assert smollm2.decode(ours) == hf_smollm2.decode(theirs) == text


@settings(max_examples=200, deadline=None)
@given(before=TEXT, after=TEXT, token=st.sampled_from([FORK_TOKEN, CHILD_TOKEN]))
def test_apar_tokens_never_merge_with_neighbours(smollm2, before, after, token):
  assume(token not in before + after)
  ids = smollm2.encode(before + token + after)
  token_id = smollm2.token_to_id(token)
  cut = ids.index(token_id)
  assert ids[:cut] == smollm2.encode(before) and ids[cut + 1:] == smollm2.encode(after)
  assert token not in smollm2.decode(ids)


def test_add_bos(smollm2):
  assert smollm2.encode('Hi', add_bos=True) == [1, *smollm2.encode('Hi')]


def test_bad_ids_are_rejected(smollm2):
  with pytest.raises(ValueError, match='outside the vocabulary'):
    smollm2.decode([5, 49154])
  with pytest.raises(ValueError, match='outside the vocabulary'):
    smollm2.id_to_token(-1)
