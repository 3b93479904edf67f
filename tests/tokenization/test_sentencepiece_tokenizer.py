"""A sentencepiece model trained here on local text: round trip, and `[Fork]`/`[Child]` always single ids."""

from __future__ import annotations

import sentencepiece as spm
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_jax.tokenization import CHILD_TOKEN, FORK_TOKEN, SentencePieceTokenizer, load_tokenizer

# U+2581 is sentencepiece's own space marker and decodes as a space; surrogates are not text.
TEXT = st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='\u2581'),
               max_size=60)
PIECES = st.lists(st.one_of(TEXT, st.sampled_from([FORK_TOKEN, CHILD_TOKEN, ' ', '\n\n', '1. ', '['])),
                  max_size=8).map(''.join)


def test_apar_tokens_are_appended_at_the_end(sp_model_path):
  tok = load_tokenizer('sentencepiece', sp_model_path)
  assert tok.base_vocab_size == 700
  assert (tok.fork_id, tok.child_id) == (700, 701)
  assert tok.vocab_size == 702
  assert tok.id_to_token(tok.fork_id) == FORK_TOKEN and tok.token_to_id(CHILD_TOKEN) == 701
  assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 2, 2)
  assert tok.stop_ids == (2,)
  assert tok.add_bos_default


def test_without_apar_tokens_the_vocabulary_is_unchanged(sp_model_path):
  tok = load_tokenizer('sentencepiece', sp_model_path, add_apar_tokens=False)
  assert tok.vocab_size == tok.base_vocab_size == 700
  assert tok.fork_id is None and tok.child_id is None


def test_ids_below_the_apar_tokens_match_sentencepiece(sp_model_path, local_corpus):
  tok = load_tokenizer('sentencepiece', sp_model_path)
  reference = spm.SentencePieceProcessor(model_file=sp_model_path)
  for line in local_corpus[::7]:
    if FORK_TOKEN not in line and CHILD_TOKEN not in line and '<s>' not in line and '</s>' not in line:
      assert tok.encode(line) == reference.encode(line)


@settings(max_examples=300, deadline=None)
@given(text=PIECES)
def test_round_trip(sp_tokenizer, text):
  tok = sp_tokenizer
  ids = tok.encode(text)
  assert tok.decode(ids, skip_special=False) == text
  assert tok.decode(ids) == tok.processor.decode([i for i in ids if i not in (tok.fork_id, tok.child_id)])


@settings(max_examples=300, deadline=None)
@given(before=TEXT, after=TEXT, token=st.sampled_from([FORK_TOKEN, CHILD_TOKEN]))
def test_control_tokens_are_single_ids_and_never_split(sp_tokenizer, before, after, token):
  tok = sp_tokenizer
  text = before + token + after
  ids = tok.encode(text)
  token_id = tok.token_to_id(token)
  assert ids.count(token_id) == text.count(token)
  # The neighbours do not merge with it: the text on each side encodes on its own.
  cut = ids.index(token_id)
  assert tok.decode(ids[:cut], skip_special=False) + token + tok.decode(ids[cut + 1:], skip_special=False) \
      in (text, text.replace(token + ' ', token, 1))
  assert token not in tok.decode(ids)


def test_control_tokens_next_to_text_and_each_other(sp_model_path):
  tok = load_tokenizer('sentencepiece', sp_model_path)
  f, c = tok.fork_id, tok.child_id
  for text in ['1. Title:[Fork]\n\n2. Next:[Fork]', '[Fork][Child][Fork]', '[[Fork]]', 'x[Child]y',
               ' [Fork] ', '[Fork', 'Fork]']:
    ids = tok.encode(text)
    assert ids.count(f) == text.count(FORK_TOKEN) and ids.count(c) == text.count(CHILD_TOKEN)
    assert tok.decode(ids, skip_special=False) == text
  ids = tok.encode('Title:[Fork]\n\n2.')
  assert not tok.id_to_token(ids[ids.index(f) + 1]).startswith('\u2581')  # no space slipped in after it
  assert tok.decode(tok.encode('a[Fork]b[Child]c')) == 'abc'


def test_control_strings_in_text_become_their_ids(sp_model_path):
  tok = load_tokenizer('sentencepiece', sp_model_path)
  ids = tok.encode('Hi</s>USER: x', add_bos=True)
  assert ids[0] == tok.bos_id and tok.eos_id in ids
  assert tok.decode(ids) == 'Hi USER: x'  # the dummy prefix of the text after </s> (LLaMA legacy)
  assert tok.decode(ids, skip_special=False) == '<s>Hi</s>USER: x'


def test_model_with_apar_pieces_already_keeps_its_ids(local_corpus, train_sentencepiece):
  proto = train_sentencepiece(local_corpus, vocab_size=600,
                              user_defined_symbols=[FORK_TOKEN, CHILD_TOKEN])
  tok = SentencePieceTokenizer(proto)
  assert tok.vocab_size == tok.base_vocab_size == 600
  assert tok.fork_id < 600 and tok.child_id < 600
  assert tok.encode('a[Fork]b').count(tok.fork_id) == 1


def test_normalizing_model_keeps_control_tokens_whole(local_corpus, train_sentencepiece):
  """sentencepiece's default NFKC normalization does not reach into the APAR tokens."""
  tok = SentencePieceTokenizer(train_sentencepiece(local_corpus[:400], vocab_size=600,
                                                   model_type='unigram', hard_vocab_limit=False))
  ids = tok.encode('Ｆｕｌｌ   width[Fork]  and [Child]x')
  assert ids.count(tok.fork_id) == 1 and ids.count(tok.child_id) == 1
  assert tok.decode(ids) == 'Full width and x'
