"""GGUF files with a sentencepiece vocabulary ('llama'), written here from a model trained on local
text: our tokenizer from the GGUF encodes exactly like sentencepiece on the original model."""

from __future__ import annotations

import pytest
import sentencepiece as spm
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_jax.tokenization import SentencePieceTokenizer, load_tokenizer

TEXT = st.lists(st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='\u2581'), max_size=30),
    st.sampled_from([' ', '  ', '\n', '[Fork]', '[Child]', '</s>', '1. ', 'def ', '日本'])),
    max_size=8).map(''.join)


def gguf_fields(model_proto: bytes) -> dict:
  """The tokenizer.ggml.* fields llama.cpp's converter writes for a sentencepiece model."""
  sp = spm.SentencePieceProcessor(model_proto=model_proto)
  n = sp.get_piece_size()

  def kind(i: int) -> int:
    return 2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i) else \
        5 if sp.is_unused(i) else 1
  return dict(model='llama', tokens=[sp.id_to_piece(i) for i in range(n)],
              scores=[sp.get_score(i) for i in range(n)], token_types=[kind(i) for i in range(n)],
              unk=sp.unk_id(), bos=sp.bos_id(), eos=sp.eos_id())


@pytest.fixture(scope='module')
def from_gguf(tmp_path_factory, write_tokenizer_gguf, llama_style_sp_model):
  path = tmp_path_factory.mktemp('gguf') / 'spm.gguf'
  return load_tokenizer('gguf', write_tokenizer_gguf(path, **gguf_fields(llama_style_sp_model)))


def test_vocabulary_facts(from_gguf):
  assert isinstance(from_gguf, SentencePieceTokenizer)
  assert (from_gguf.base_vocab_size, from_gguf.fork_id, from_gguf.child_id) == (700, 700, 701)
  assert (from_gguf.bos_id, from_gguf.eos_id, from_gguf.stop_ids) == (1, 2, (2,))
  assert from_gguf.add_bos_default  # llama.cpp's default for sentencepiece vocabularies


def test_corpus_encodes_like_sentencepiece(from_gguf, sp_tokenizer, local_corpus):
  reference = sp_tokenizer.processor
  for line in local_corpus:
    assert from_gguf.encode(line) == sp_tokenizer.encode(line)
  plain = [line for line in local_corpus if '[' not in line and '<' not in line]
  assert all(from_gguf.encode(line) == reference.encode(line) for line in plain)


@settings(max_examples=300, deadline=None)
@given(text=TEXT)
def test_random_text_encodes_like_sentencepiece(from_gguf, sp_tokenizer, text):
  ids = from_gguf.encode(text)
  assert ids == sp_tokenizer.encode(text)
  assert from_gguf.decode(ids, skip_special=False) == text


def test_file_flags(tmp_path, write_tokenizer_gguf, llama_style_sp_model):
  fields = gguf_fields(llama_style_sp_model)
  tok = load_tokenizer('gguf', write_tokenizer_gguf(tmp_path / 'a.gguf', **fields, add_bos=False,
                                                    add_space_prefix=False, eot=5, pad=0))
  assert not tok.add_bos_default and tok.stop_ids == (2, 5)
  assert tok.pad_id == tok.eos_id  # the file's pad is <unk>, which sentencepiece will not pad with
  assert not tok.id_to_token(tok.encode('hello')[0]).startswith('\u2581')
  assert tok.decode(tok.encode(' two  spaces')) == ' two  spaces'
