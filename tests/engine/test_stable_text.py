"""`stable_text.AnswerText` against the final reassembly: fed an APAR request's token events chunk by
chunk, the pieces add up to `Result.text`, each piece only once no later token can change it, and
stop sequences cut it exactly where a plain `str.find` on the final text does."""

import pytest

from apar_jax.engine import DoneEvent, Engine, Request, TokensEvent
from apar_jax.engine.host.stable_text import AnswerText, stable_ids
from tiny_model import CHILD, EOS, FORK, IDS, FakeTokenizer, tiny_config

PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 12, 14]]


def _events(forky_params):
  engine = Engine(tiny_config(max_slots=32, num_pages=400), 'apar', params=forky_params,
                  control_ids=IDS, tokenizer=FakeTokenizer())
  requests = [Request(token_ids=p, max_new_tokens=16) for p in PROMPTS]
  return list(engine.stream(requests, chunk_steps=2))


def test_pieces_add_up_to_the_final_text_and_never_change(forky_params):
  events = _events(forky_params)
  forks = 0
  for index in range(len(PROMPTS)):
    text = AnswerText(FakeTokenizer(), FORK, CHILD, (EOS,))
    pieces = []
    for event in events:
      if isinstance(event, TokensEvent) and event.index == index:
        pieces.append(text.add(event))
      elif isinstance(event, DoneEvent) and event.index == index:
        pieces.append(text.finish(event.result))
        result = event.result
    assert ''.join(pieces) == result.text
    forks += result.forks
    # A piece handed out is a prefix of the final text at every point (nothing taken back).
    assert all(result.text.startswith(''.join(pieces[:i])) for i in range(len(pieces)))
    if result.forks:
      assert sum(1 for p in pieces[:-1] if p) >= 1  # some text before the request ended
  assert forks >= 6


def test_child_not_visible_yet_holds_the_text_back():
  from apar_jax.engine.host.stable_text import _Branch
  # Root wrote a, [Fork], b; its child is not reported yet: only `a` is final.
  branches = {0: _Branch(-1, -1, [5, FORK, 6])}
  assert stable_ids(branches, FORK, CHILD, frozenset({EOS})) == [5]
  branches[1] = _Branch(0, 1, [7, 8])  # child decoding: its tokens are final, the parent's not yet
  assert stable_ids(branches, FORK, CHILD, frozenset({EOS})) == [5, 7, 8]
  branches[1].tokens.append(EOS)
  assert stable_ids(branches, FORK, CHILD, frozenset({EOS})) == [5, 7, 8, 6]


@pytest.mark.parametrize('stops', [['<7>'], ['<1', '>>'], ['<33><', 'nothing']])
def test_stop_sequences_cut_where_find_does(forky_params, stops):
  events = _events(forky_params)
  for index in range(len(PROMPTS)):
    text = AnswerText(FakeTokenizer(), FORK, CHILD, (EOS,), stops)
    out = ''
    for event in events:
      if isinstance(event, TokensEvent) and event.index == index:
        out += text.add(event)
      elif isinstance(event, DoneEvent) and event.index == index:
        out += text.finish(event.result)
        full = event.result.text
    cuts = [full.find(s) for s in stops if full.find(s) >= 0]
    assert out == (full[:min(cuts)] if cuts else full)
    assert text.stopped == bool(cuts)
