"""Streaming detokenization: the pieces add up to a full decode; no half characters come out."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_jax.tokenization import IncrementalDecoder

TEXT = st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='\u2581'),
               max_size=30)
SEGMENTS = st.lists(st.one_of(TEXT, st.sampled_from(
    ['😀', '日本語', ' é', '  ', '\n\n', '[Fork]', '[Child]', ' word', '1. Title:', '<|im_end|>', '</s>'])),
    max_size=8)


def stream(tokenizer, ids, **kwargs) -> list[str]:
  decoder = IncrementalDecoder(tokenizer, **kwargs)
  return [decoder.push(i) for i in ids] + [decoder.flush()]


@pytest.fixture(scope='module', params=['smollm2', 'sp_tokenizer'])
def tokenizer(request):
  return request.getfixturevalue(request.param)


@settings(max_examples=150, deadline=None)
@given(segments=SEGMENTS, skip_special=st.booleans())
def test_pieces_add_up_to_the_full_decode(tokenizer, segments, skip_special):
  # Token sequences a model could emit: encodings of text pieces, concatenated.
  ids = [i for s in segments for i in tokenizer.encode(s)]
  pieces = stream(tokenizer, ids, skip_special=skip_special)
  assert ''.join(pieces) == tokenizer.decode(ids, skip_special=skip_special)
  assert not any(p.endswith('\ufffd') for p in pieces[:-1])


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_arbitrary_ids_never_fail_and_add_up(tokenizer, data):
  ids = data.draw(st.lists(st.integers(0, tokenizer.vocab_size - 1), max_size=20))
  assert ''.join(stream(tokenizer, ids)) == tokenizer.decode(ids)


def test_multibyte_characters_come_out_whole(smollm2):
  text = '😀 日本語 naïve'
  ids = smollm2.encode(text)
  assert len(ids) > len(text.split())  # some characters span several byte tokens
  pieces = stream(smollm2, ids)
  assert ''.join(pieces) == text and '\ufffd' not in ''.join(pieces)
  assert '' in pieces  # held back while a character was incomplete


def test_context_keeps_a_childs_leading_space(sp_tokenizer):
  """A child branch streamed after its parent's `[Fork]`: sentencepiece would drop the space of
  `▁details` at the start of a decode; with the parent as context it stays."""
  tok = sp_tokenizer
  parent = tok.encode('1. Title:[Fork]')
  child = [tok.child_id, *tok.encode('details here')]  # starts with a `▁` piece
  assert tok.id_to_token(child[1]).startswith('\u2581')
  alone = ''.join(stream(tok, child))
  with_context = ''.join(stream(tok, child, context=parent))
  assert with_context == ' ' + alone
  assert tok.decode(parent + child) == tok.decode(parent) + with_context
