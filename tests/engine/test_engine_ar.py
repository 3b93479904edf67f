"""Engine AR mode on the tiny model: parity with the dense reference loop, batching, sampling,
compile count, input validation, page accounting and chunked host syncs."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.engine import Engine, Request
from apar_jax.generate import DenseGenerator
from apar_jax.model import build_model
from tiny_model import CHILD, EOS, FORK, IDS, tiny_config

PROMPTS = [[1, 2, 3], list(range(5, 25)), [33], [7, 8, 9, 10, 11, 12, 13, 14, 15], [50, 4]]
NEW = 16


def _reference(config, params, prompt, new=NEW):
  gen = DenseGenerator(build_model(config.model), params, stop_ids=(EOS,), banned_ids=(FORK, CHILD))
  return gen.generate([prompt], new)['tokens'][0]


@pytest.fixture(scope='module')
def reference_tokens(tiny, forky_params):
  config, _ = tiny
  return [_reference(config, forky_params, p) for p in PROMPTS]


def _check_pages(engine):
  stats = engine.last_stats
  assert stats['free_pages_end'] == stats['num_pages']
  assert stats['min_refcount_end'] == 0 and stats['max_refcount_end'] == 0


def test_ar_batch1_matches_dense_reference(tiny, forky_params, reference_tokens):
  config, _ = tiny
  engine = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  for prompt, want in zip(PROMPTS, reference_tokens):
    [got] = engine.generate([Request(token_ids=prompt, max_new_tokens=NEW)])
    assert got.token_ids == want
    assert got.decode_steps == len(want) and got.forks == 0 and got.max_live_branches == 1
    _check_pages(engine)
  assert any(t[-1] == EOS for t in reference_tokens)
  assert any(len(t) == NEW for t in reference_tokens)


def test_ar_batched_and_queued_match_batch1(tiny, forky_params, reference_tokens):
  config, _ = tiny
  engine = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  requests = [Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS + PROMPTS[:3]]
  results = engine.generate(requests)  # 8 requests, 4 request slots: the rest wait in the queue
  for r, want in zip(results, reference_tokens + reference_tokens[:3]):
    assert r.token_ids == want
  _check_pages(engine)
  assert engine.last_stats['peak_kv_pages'] > max(r.peak_kv_pages for r in results)


def test_sampling_is_reproducible_and_batch_invariant(tiny, forky_params):
  config, _ = tiny
  engine = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  req = lambda seed: Request(token_ids=PROMPTS[1], max_new_tokens=NEW, temperature=1.0,  # noqa
                             top_k=20, top_p=0.95, seed=seed)
  [alone] = engine.generate([req(3)])
  batch = engine.generate([Request(token_ids=PROMPTS[0], max_new_tokens=NEW, temperature=0.7,
                                   seed=1), req(3), req(4)])
  assert batch[1].token_ids == alone.token_ids
  assert batch[2].token_ids != alone.token_ids
  assert alone.token_ids != engine.generate([Request(token_ids=PROMPTS[1], max_new_tokens=NEW)])[
      0].token_ids


def test_one_compile_per_config_and_mode(tiny, forky_params):
  config = tiny_config(chunk_steps=3)  # capacities no other test uses: a fresh compile cache
  engine = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  for batch in ([PROMPTS[0]], PROMPTS[1:4], PROMPTS):
    engine.generate([Request(token_ids=p, max_new_tokens=n)
                     for p, n in zip(batch, (4, 9, 16, 2, 7))])
  engine.generate([Request(token_ids=PROMPTS[2], max_new_tokens=5, temperature=0.5, top_p=0.5)])
  sizes = engine.fns.cache_sizes()
  assert 1 <= sizes.pop('run_chunk') <= len(engine.fns.buckets)  # one per row bucket used
  assert sizes == {'admit': 1, 'prefill_chunk': 1, 'reset': 1, 'cancel': 0, 'summary': 1,
                   'init': 1}  # nothing cancelled
  again = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  assert again.fns is engine.fns  # same (config, capacities, mode): nothing new to compile


def test_chunks_not_steps_sync_with_host(tiny, forky_params):
  config, _ = tiny
  engine = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  [r] = engine.generate([Request(token_ids=PROMPTS[1], max_new_tokens=NEW)], chunk_steps=4)
  assert engine.last_stats['chunks'] == math.ceil(r.decode_steps / 4) < r.decode_steps
  state = engine._state  # the jitted chunk has no host callback inside the while loop
  hlo = engine.fns.run_chunk.lower(forky_params, state, jnp.zeros((1, 8), bool),
                                    jnp.int32(4)).as_text()
  assert 'callback' not in hlo.lower() and 'while' in hlo


@pytest.mark.parametrize('request_, match', [
    (Request(token_ids=[]), 'empty'),
    (Request(token_ids=[1, 64]), 'outside the vocabulary'),
    (Request(token_ids=[-1]), 'outside the vocabulary'),
    (Request(token_ids=list(range(1, 60)) * 2, max_new_tokens=4), 'slot holds'),
    (Request(token_ids=[1], max_new_tokens=25), 'output buffer'),
    (Request(token_ids=[1], max_new_tokens=0), '>= 1'),
    (Request(token_ids=[1], top_p=0.0), 'top_p'),
    (Request(), 'prompt or token_ids'),
])
def test_bad_input_fails_before_compiling(tiny, forky_params, request_, match):
  config = tiny_config(chunk_steps=5)
  engine = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  with pytest.raises(ValueError, match=match):
    engine.generate([Request(token_ids=[1, 2]), request_])
  assert set(engine.fns.cache_sizes().values()) == {0}


def test_capacity_too_small_for_one_request(forky_params):
  engine = Engine(tiny_config(num_pages=3, chunk_steps=5), 'ar', params=forky_params,
                  control_ids=IDS)
  with pytest.raises(ValueError, match='num_pages'):
    engine.generate([Request(token_ids=list(range(1, 10)), max_new_tokens=8)])
  with pytest.raises(ValueError, match='max_slots must be >= 1'):
    Engine(tiny_config(max_slots=0), 'ar', params=forky_params, control_ids=IDS)
  with pytest.raises(ValueError, match='mode'):
    Engine(tiny_config(), 'medusa', params=forky_params, control_ids=IDS)


def test_tokens_stream_per_chunk(tiny, forky_params, reference_tokens):
  config, _ = tiny
  engine = Engine(config, 'ar', params=forky_params, control_ids=IDS)
  streamed: dict[int, list[int]] = {}
  done = {}
  for event in engine.stream([Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS[:2]]):
    if hasattr(event, 'new_tokens'):
      streamed.setdefault(event.index, []).extend(event.new_tokens)
    else:
      done[event.index] = event.result
  for i in range(2):
    assert streamed[i] == done[i].token_ids == reference_tokens[i]
  np.testing.assert_equal(sorted(done), [0, 1])
