"""Hugging Face tokenizer.json files: special tokens from the config files, APAR tokens appended."""

from __future__ import annotations

import json

import pytest
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from apar_jax.tokenization import load_tokenizer

SPECIALS = ['<unk>', '<s>', '</s>', '<|im_end|>']


def train_byte_level_bpe(lines: list[str]) -> tokenizers.Tokenizer:
  """A small GPT-2-style tokenizer trained on `lines`, with a template that adds `<s>`."""
  tok = tokenizers.Tokenizer(models.BPE())
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  tok.train_from_iterator(lines, trainers.BpeTrainer(
      vocab_size=500, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
      show_progress=False))
  tok.post_processor = processors.TemplateProcessing(single='<s> $A', special_tokens=[('<s>', 1)])
  return tok


def write(directory, name: str, content: dict | str) -> None:
  (directory / name).write_text(content if isinstance(content, str) else json.dumps(content))


@pytest.fixture(scope='module')
def bpe_json(local_corpus) -> str:
  return train_byte_level_bpe(local_corpus).to_str()


def test_special_tokens_from_config_files(tmp_path, bpe_json):
  write(tmp_path, 'tokenizer.json', bpe_json)
  write(tmp_path, 'tokenizer_config.json',
        {'bos_token': {'content': '<s>'}, 'eos_token': '<|im_end|>', 'add_bos_token': False})
  write(tmp_path, 'generation_config.json', {'eos_token_id': [3, 2]})
  tok = load_tokenizer('hf', str(tmp_path))
  assert (tok.base_vocab_size, tok.fork_id, tok.child_id, tok.vocab_size) == (500, 500, 501, 502)
  assert (tok.bos_id, tok.eos_id, tok.pad_id) == (1, 3, 3)
  assert tok.stop_ids == (3, 2)
  assert not tok.add_bos_default


def test_guesses_without_config_files(tmp_path, bpe_json):
  write(tmp_path, 'tokenizer.json', bpe_json)
  tok = load_tokenizer('hf', str(tmp_path / 'tokenizer.json'))
  assert (tok.bos_id, tok.eos_id) == (1, 2)
  assert tok.add_bos_default  # read off the post-processor template
  assert tok.encode('Hi')[0] != tok.bos_id  # ... which encode never applies by itself
  assert tok.encode('Hi', add_bos=True)[0] == tok.bos_id


def test_round_trip_and_control_tokens(tmp_path, bpe_json, local_corpus):
  write(tmp_path, 'tokenizer.json', bpe_json)
  tok = load_tokenizer('hf', str(tmp_path))
  for line in local_corpus[::50] + ['1. Title:[Fork]\n\n2. Next:[Fork]', 'a[Fork]b[Child]c 😀']:
    ids = tok.encode(line)
    assert tok.decode(ids, skip_special=False) == line
    assert ids.count(tok.fork_id) == line.count('[Fork]')
    assert '[Fork]' not in tok.decode(ids) and '[Child]' not in tok.decode(ids)


@pytest.mark.smollm2
def test_saved_tokenizer_with_apar_tokens_keeps_their_ids(tmp_path, smollm2):
  write(tmp_path, 'tokenizer.json', smollm2.backend.to_str())
  write(tmp_path, 'tokenizer_config.json', {'bos_token': '<|im_start|>', 'eos_token': '<|im_end|>'})
  tok = load_tokenizer('hf', str(tmp_path))
  assert tok.vocab_size == tok.base_vocab_size == 49154
  assert (tok.fork_id, tok.child_id, tok.bos_id, tok.eos_id) == (49152, 49153, 1, 2)
  text = 'Steps:\n\n1. Mix[Fork] 2² <|im_end|>'
  assert tok.encode(text) == smollm2.encode(text)


def test_space_prefix_after_added_tokens_is_reported(tmp_path, local_corpus):
  """A LLaMA-style tokenizer.json that prefixes a space after every added token would shift text
  at each `[Fork]`; loading it warns and points to the sentencepiece model."""
  tok = tokenizers.Tokenizer(models.BPE(unk_token='<unk>'))
  tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme='always', split=False)
  tok.decoder = decoders.Metaspace(prepend_scheme='always', split=False)
  tok.train_from_iterator(local_corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS,
                                                            show_progress=False))
  write(tmp_path, 'tokenizer.json', tok.to_str())
  with pytest.warns(UserWarning, match="kind='sentencepiece'"):
    load_tokenizer('hf', str(tmp_path))
