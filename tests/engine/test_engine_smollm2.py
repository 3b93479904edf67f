"""SmolLM2-135M (real weights): engine AR greedy is token-identical to the foundation's dense loop,
at batch 1 and with 4 requests of different lengths decoded together."""

import pytest

from apar_jax.engine import Engine, Request
from apar_jax.generate import DenseGenerator
from apar_jax.runtime import load_runtime
from apar_jax.tokenization import encode_chat
from smollm2_config import smollm2_engine_config

pytestmark = pytest.mark.smollm2

PROMPTS = [
    'What is the capital of France?',
    'List three benefits of regular exercise.',
    'Write a haiku about the sea.',
    'Name two primary colors.',
    'Give me a tip for learning to code.',
]
NEW = 20


@pytest.fixture(scope='module')
def runtime():
  return load_runtime(smollm2_engine_config(NEW))


@pytest.fixture(scope='module')
def prompt_ids(runtime):
  return [encode_chat(runtime.tokenizer, [{'role': 'user', 'content': p}], 'chatml')
          for p in PROMPTS]


@pytest.fixture(scope='module')
def reference(runtime, prompt_ids):
  tok = runtime.tokenizer
  gen = DenseGenerator(runtime.model, runtime.params, stop_ids=tok.stop_ids,
                       banned_ids=(tok.fork_id, tok.child_id))
  return [gen.generate([ids], NEW)['tokens'][0] for ids in prompt_ids]


@pytest.fixture(scope='module')
def engine(runtime):
  return Engine(runtime.config, 'ar', params=runtime.params, tokenizer=runtime.tokenizer)


def test_batch1_token_identical(engine, prompt_ids, reference):
  for ids, want in zip(prompt_ids, reference):
    [got] = engine.generate([Request(token_ids=ids, max_new_tokens=NEW)])
    assert got.token_ids == want, (engine.tokenizer.decode(got.token_ids),
                                   engine.tokenizer.decode(want))
  assert len({len(ids) for ids in prompt_ids}) > 2


def test_four_requests_of_different_lengths_together(engine, prompt_ids, reference):
  picks = [0, 2, 3, 4]  # 37, 38, 35 and 39 prompt tokens
  requests = [Request(prompt=PROMPTS[i], token_ids=prompt_ids[i], max_new_tokens=NEW)
              for i in picks]
  results = engine.generate(requests)
  for i, got in zip(picks, results):
    assert got.token_ids == reference[i]
    assert got.text == engine.tokenizer.decode(reference[i]) and got.prompt == PROMPTS[i]
  stats = engine.last_stats
  assert stats['free_pages_end'] == stats['num_pages'] and stats['min_refcount_end'] == 0
  assert stats['steps'] == max(r.decode_steps for r in results)  # all four decoded side by side
