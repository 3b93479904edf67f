"""`Engine.serve` over a `LiveFeed`: requests submitted while the engine runs decode exactly as in
`generate`, and a cancelled request (any point of its tree: live, pending or copying children,
speculative windows) frees every page and leaves the others untouched."""

import pytest

from apar_jax.engine import DoneEvent, Engine, Request, TokensEvent, tree_signature
from apar_jax.engine.host.request_feed import LiveFeed, QueueFull
from test_engine_speculative import make_engine
from tiny_model import IDS, FakeTokenizer, tiny_config

PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 12, 14]]
NEW = 16


def _engine(params, mode='apar', **caps):
  if mode == 'apar':
    return Engine(tiny_config(**caps), mode, params=params, control_ids=IDS,
                  tokenizer=FakeTokenizer())
  return make_engine(params, mode, **caps)


def _check_pages(engine):
  s = engine.last_stats
  assert s['free_pages_end'] == s['num_pages']
  assert s['min_refcount_end'] == 0 == s['max_refcount_end']


def _serve(engine, cancel_index=None, cancel_after_chunks=0):
  """Submits every prompt to a live feed, cancels one request after some chunks; {index: event}."""
  feed = LiveFeed(max_waiting=len(PROMPTS))
  for i, p in enumerate(PROMPTS):
    feed.submit(engine.prepare(i, Request(token_ids=p, max_new_tokens=NEW)))
  feed.close()
  done, chunks = {}, 0
  for event in engine.serve(feed, chunk_events=True):
    if isinstance(event, DoneEvent):
      done[event.index] = event
    elif not isinstance(event, TokensEvent):
      chunks += 1
      if chunks == cancel_after_chunks and cancel_index not in done:
        assert feed.cancel(cancel_index) is False  # admitted already: ended at the next chunk
  return done


@pytest.mark.parametrize('mode', ['apar', 'apar_lookup'])
def test_live_feed_decodes_as_generate(forky_params, mode):
  engine = _engine(forky_params, mode, chunk_steps=3)
  want = engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS])
  got = _serve(engine)
  assert sorted(got) == list(range(len(PROMPTS)))
  for i, w in enumerate(want):
    assert not got[i].cancelled
    assert tree_signature(got[i].result.branches) == tree_signature(w.branches)
  _check_pages(engine)


@pytest.mark.parametrize('mode', ['apar', 'apar_lookup'])
@pytest.mark.parametrize('after', [1, 2, 3, 5])
def test_cancel_frees_pages_and_spares_the_others(forky_params, mode, after):
  # One step per chunk: cancelling after 1, 2, 3, 5 steps catches the forking request's children
  # PENDING, COPYING and LIVE in turn (fork_copies_per_step=1 makes them queue for the copy).
  engine = _engine(forky_params, mode, chunk_steps=1, fork_copies_per_step=1, max_slots=32,
                   num_pages=400, row_buckets=True)
  want = engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS])
  victim = max(range(len(PROMPTS)), key=lambda i: want[i].forks)
  assert want[victim].forks >= 2
  got = _serve(engine, victim, after)
  assert got[victim].cancelled
  assert got[victim].result.decode_steps <= after < want[victim].decode_steps
  for i, w in enumerate(want):
    if i != victim:
      assert not got[i].cancelled
      assert tree_signature(got[i].result.branches) == tree_signature(w.branches)
  _check_pages(engine)
  # The engine serves again after a cancellation, with the same answers.
  again = engine.generate([Request(token_ids=PROMPTS[victim], max_new_tokens=NEW)])
  assert tree_signature(again[0].branches) == tree_signature(want[victim].branches)
  _check_pages(engine)


def test_waiting_request_cancelled_never_runs_and_full_feed_refuses(forky_params):
  engine = _engine(forky_params, max_requests=1, max_slots=8)
  feed = LiveFeed(max_waiting=2)
  feed.submit(engine.prepare(0, Request(token_ids=PROMPTS[0], max_new_tokens=NEW)))
  feed.submit(engine.prepare(1, Request(token_ids=PROMPTS[1], max_new_tokens=NEW)))
  with pytest.raises(QueueFull):
    feed.submit(engine.prepare(2, Request(token_ids=PROMPTS[2], max_new_tokens=NEW)))
  assert feed.cancel(1) is True  # still waiting: dropped
  feed.close()
  with pytest.raises(RuntimeError, match='shutting down'):
    feed.submit(engine.prepare(3, Request(token_ids=PROMPTS[3], max_new_tokens=NEW)))
  done = [e.index for e in engine.serve(feed) if isinstance(e, DoneEvent)]
  assert done == [0]
  _check_pages(engine)
