"""SmolLM2-135M (real weights): prompt-lookup speculative decoding in the engine is token-identical to
engine AR (fp32 greedy) and accepts more than one token per step on prompts the answer quotes."""

import pytest

from apar_jax.engine import Engine, Request
from apar_jax.runtime import load_runtime
from apar_jax.tokenization import encode_chat
from smollm2_config import smollm2_engine_config

pytestmark = pytest.mark.smollm2

PROMPTS = [
    'Repeat this sentence exactly: The quick brown fox jumps over the lazy dog near the river bank.',
    'Copy the list: apples, bananas, cherries, dates, elderberries, figs, grapes.',
    'What is the capital of France?',
    'Rewrite in capital letters: the meeting starts at nine in the morning on monday.',
]
NEW = 24


@pytest.fixture(scope='module')
def runtime():
  config = smollm2_engine_config(NEW)
  config.speculative = dict(tree='chain', lookup_num_draft=4)
  return load_runtime(config)


def test_lookup_equals_ar(runtime):
  tok = runtime.tokenizer
  ids = [encode_chat(tok, [{'role': 'user', 'content': p}], 'chatml') for p in PROMPTS]
  requests = [Request(token_ids=i, max_new_tokens=NEW) for i in ids]
  ar = Engine.from_runtime(runtime, 'ar').generate(requests)
  engine = Engine.from_runtime(runtime, 'lookup')
  got = engine.generate(requests)
  for want, res in zip(ar, got):
    assert res.token_ids == want.token_ids, (tok.decode(res.token_ids), tok.decode(want.token_ids))
  accepted = [r.mean_accepted_tokens for r in got]
  assert max(accepted) > 1.5, accepted
  assert sum(r.decode_steps for r in got) < sum(r.decode_steps for r in ar)
  stats = engine.last_stats
  assert stats['free_pages_end'] == stats['num_pages']
