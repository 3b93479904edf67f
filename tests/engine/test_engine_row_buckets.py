"""Live-width row buckets: the forward runs on a bucket of 1, 2, 4, ... rows holding the live
branches. Answers are those of the engine without buckets (every slot a row) in AR, APAR and the
speculative modes, with buckets switching mid-answer as branches fork and end; a fork that needs a
wider bucket ends the chunk early; one compile per bucket, all of them in `warmup`."""

import pytest

from apar_jax.engine import Engine, Request, tree_signature
from apar_jax.engine.device.row_buckets import bucket_for, buckets
from test_engine_speculative import make_engine
from tiny_model import IDS, FakeTokenizer, tiny_config

PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 12, 14]]
NEW = 16
CAPS = dict(max_slots=16, num_pages=200, chunk_steps=32)


def _engine(params, mode, **caps):
  if mode in ('ar', 'apar'):
    return Engine(tiny_config(**caps), mode, params=params, control_ids=IDS,
                  tokenizer=FakeTokenizer())
  return make_engine(params, mode, **caps)


def test_bucket_sizes():
  assert buckets(1) == (1,) and buckets(8) == (1, 2, 4, 8) and buckets(12) == (1, 2, 4, 8, 12)
  got = [bucket_for(n, buckets(12)) for n in (0, 1, 2, 3, 5, 8, 9, 12)]
  assert got == [1, 1, 2, 4, 8, 8, 12, 12]
  assert bucket_for(5, (16,)) == 16  # buckets off: every slot


@pytest.mark.parametrize('mode', ['ar', 'apar', 'lookup', 'apar_lookup', 'apar_medusa'])
def test_buckets_give_the_answers_of_every_slot_as_a_row(forky_params, mode):
  plain = _engine(forky_params, mode, row_buckets=False, **CAPS)
  assert plain.fns.buckets == (CAPS['max_slots'],)
  bucketed = _engine(forky_params, mode, row_buckets=True, **CAPS)
  assert bucketed.fns.buckets == (1, 2, 4, 8, 16)
  for batch in ([PROMPTS[0]], PROMPTS):  # one request: its branches alone pick the bucket
    want = plain.generate([Request(token_ids=p, max_new_tokens=NEW) for p in batch])
    got = bucketed.generate([Request(token_ids=p, max_new_tokens=NEW) for p in batch])
    for w, g in zip(want, got):
      assert g.token_ids == w.token_ids
      assert tree_signature(g.branches) == tree_signature(w.branches)
      assert (g.decode_steps, g.forks) == (w.decode_steps, w.forks)
    stats = bucketed.last_stats
    assert stats['free_pages_end'] == stats['num_pages'] and stats['max_refcount_end'] == 0
  used = bucketed.fns.cache_sizes()['run_chunk']
  assert 2 <= used <= len(bucketed.fns.buckets)  # buckets switched, one compile each
  if mode.startswith('apar'):
    assert sum(r.forks for r in got) >= 3
    # Forks outgrow the bucket: chunks end early, so more chunks than without buckets.
    assert bucketed.last_stats['chunks'] > plain.last_stats['chunks']


def test_warmup_compiles_every_bucket(forky_params):
  engine = _engine(forky_params, 'apar', row_buckets=True, **dict(CAPS, chunk_steps=5))
  engine.warmup()
  assert engine.fns.cache_sizes()['run_chunk'] == len(engine.fns.buckets)
  engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS])
  assert engine.fns.cache_sizes()['run_chunk'] == len(engine.fns.buckets)  # nothing new
