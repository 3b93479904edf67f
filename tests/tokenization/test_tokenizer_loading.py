"""`load_tokenizer`: each kind from a file, and clear errors that say what to do."""

from __future__ import annotations

import json

import pytest
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from apar_jax.tokenization import HFTokenizer, load_tokenizer
from apar_jax.tokenization.gguf_bpe import byte_to_char


@pytest.fixture(scope='module')
def byte_level_bpe(local_corpus) -> tokenizers.Tokenizer:
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(local_corpus, trainers.BpeTrainer(
      vocab_size=400, special_tokens=['<|endoftext|>'], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False))
  return tok


def gpt2_fields(tok: tokenizers.Tokenizer, **keys) -> dict:
  """What llama.cpp's converter writes for a byte-level BPE tokenizer.json."""
  model = json.loads(tok.to_str())['model']
  tokens = sorted(model['vocab'], key=model['vocab'].get)
  return dict(model='gpt2', tokens=tokens, token_types=[3 if t == '<|endoftext|>' else 1 for t in tokens],
              merges=[' '.join(m) for m in model['merges']], eos=0, **keys)


def test_byte_level_gguf_encodes_like_its_tokenizer(tmp_path, write_tokenizer_gguf, byte_level_bpe,
                                                    local_corpus):
  path = write_tokenizer_gguf(tmp_path / 'bpe.gguf', **gpt2_fields(byte_level_bpe, pre='gpt2'))
  tok = load_tokenizer('gguf', path)
  assert isinstance(tok, HFTokenizer) and (tok.base_vocab_size, tok.fork_id) == (400, 400)
  assert tok.bos_id is None and tok.eos_id == tok.pad_id == 0 and not tok.add_bos_default
  for line in local_corpus[::5] + ['x  1\n\n2. ²', 'a<|endoftext|>b']:
    if '[Fork]' not in line and '[Child]' not in line:  # APAR tokens are ours only
      assert tok.encode(line) == byte_level_bpe.encode(line).ids
    assert tok.decode(tok.encode(line), skip_special=False) == line


def test_byte_spelling():
  chars = byte_to_char()
  assert len(set(chars.values())) == 256
  assert (chars[ord(' ')], chars[ord('\n')], chars[ord('a')]) == ('Ġ', 'Ċ', 'a')


def test_unknown_kind():
  with pytest.raises(ValueError, match="Unknown tokenizer kind 'spm'.*gguf, hf, sentencepiece"):
    load_tokenizer('spm', 'x')


@pytest.mark.parametrize('kind', ['gguf', 'hf', 'sentencepiece'])
def test_missing_file(tmp_path, kind):
  with pytest.raises(FileNotFoundError, match='does not exist'):
    load_tokenizer(kind, str(tmp_path / 'nothing'))


def test_default_path_must_be_resolved_first():
  with pytest.raises(ValueError, match='resolve it to a file path'):
    load_tokenizer('gguf', 'default')


def test_directory_without_the_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='No tokenizer.json'):
    load_tokenizer('hf', str(tmp_path))
  with pytest.raises(FileNotFoundError, match='No sentencepiece model'):
    load_tokenizer('sentencepiece', str(tmp_path))


def test_files_of_the_wrong_kind(tmp_path):
  junk = tmp_path / 'junk.bin'
  junk.write_bytes(b'\x00\x01 not a tokenizer ' * 10)
  with pytest.raises(ValueError, match='not a readable GGUF'):
    load_tokenizer('gguf', str(junk))
  with pytest.raises(ValueError, match='not a valid Hugging Face tokenizer.json'):
    load_tokenizer('hf', str(junk))
  with pytest.raises(ValueError, match='not a valid sentencepiece model'):
    load_tokenizer('sentencepiece', str(junk))


def test_unsupported_gguf_tokenizers(tmp_path, write_tokenizer_gguf, byte_level_bpe):
  with pytest.raises(NotImplementedError, match="GGUF tokenizer model 'bert' is not supported.*kind='hf'"):
    load_tokenizer('gguf', write_tokenizer_gguf(tmp_path / 'a.gguf', model='bert', tokens=['a']))
  fields = gpt2_fields(byte_level_bpe, pre='mystery')
  with pytest.raises(NotImplementedError, match="pre-tokenizer 'mystery' is not supported.*smollm"):
    load_tokenizer('gguf', write_tokenizer_gguf(tmp_path / 'b.gguf', **fields))
  with pytest.raises(ValueError, match='no tokenizer metadata'):
    load_tokenizer('gguf', write_tokenizer_gguf(tmp_path / 'c.gguf', model=None, tokens=None))
  with pytest.raises(ValueError, match='has no tokenizer.ggml.scores'):
    load_tokenizer('gguf', write_tokenizer_gguf(tmp_path / 'd.gguf', model='llama', tokens=['<unk>', 'a']))
