"""Per-branch decode-step ranges in the results (`Branch.first_step` / `last_step`: branch timelines),
checked against the steps at which a one-step-per-chunk stream delivered each branch's tokens."""

import pytest

from apar_jax.engine import Engine, Request
from apar_jax.engine.host.requests import ChunkEvent, DoneEvent, TokensEvent
from tiny_model import IDS, FakeTokenizer, tiny_config

PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 12, 14]]
CAPS = dict(max_slots=32, num_pages=400)


def _engine(params, mode, **caps):
  config = tiny_config(**dict(CAPS, **caps))
  if mode == 'apar_lookup':
    config.speculative = dict(tree='chain', lookup_num_draft=4)
  return Engine(config, mode, params=params, control_ids=IDS, tokenizer=FakeTokenizer())


def _streamed_steps(engine, prompt, new):
  """{branch id: steps in which it delivered tokens (one entry per token)} and the result, for one
  request decoded one step per chunk (its decode steps are then the engine's steps)."""
  steps, step, result = {}, -1, None
  for event in engine.stream([Request(token_ids=prompt, max_new_tokens=new)], chunk_steps=1,
                             chunk_events=True):
    if isinstance(event, ChunkEvent):
      step += 1
    elif isinstance(event, TokensEvent):
      steps.setdefault(event.branch_id, []).extend([step] * len(event.new_tokens))
    elif isinstance(event, DoneEvent):
      result = event.result
  return steps, result


def _check_tree(result, one_token_per_step):
  by_id = {b.branch_id: b for b in result.branches}
  assert by_id[0].first_step == 0
  assert max(b.last_step for b in result.branches) == result.decode_steps - 1
  for b in result.branches:
    assert 0 <= b.first_step <= b.last_step < result.decode_steps
    span = b.last_step - b.first_step + 1
    assert span == len(b.tokens) if one_token_per_step else span <= len(b.tokens)
    if b.parent >= 0 and one_token_per_step:  # the parent wrote [Fork] at its output fork_point;
      parent = by_id[b.parent]  # the child feeds [Child] two steps later at the earliest
      assert b.first_step >= parent.first_step + b.fork_point + 2


@pytest.mark.parametrize('mode', ['ar', 'apar', 'apar_lookup'])
def test_branch_step_ranges_match_the_streamed_steps(forky_params, mode):
  engine = _engine(forky_params, mode)
  results = engine.generate([Request(token_ids=p, max_new_tokens=16) for p in PROMPTS])  # batched
  for r in results:
    _check_tree(r, one_token_per_step=mode != 'apar_lookup')
    if mode == 'ar':
      assert len(r.branches) == 1 and len(r.branches[0].tokens) == r.decode_steps
  assert mode == 'ar' or sum(r.forks for r in results) >= 6
  record = results[0].to_record()
  assert {'first_step', 'last_step'} <= set(record['branches'][0])

  for prompt, batched in zip(PROMPTS, results):
    steps, alone = _streamed_steps(engine, prompt, 16)
    assert alone.token_ids == batched.token_ids
    _check_tree(alone, one_token_per_step=mode != 'apar_lookup')
    for b in alone.branches:
      assert steps[b.branch_id][0] == b.first_step and steps[b.branch_id][-1] == b.last_step
      if mode != 'apar_lookup':
        assert steps[b.branch_id] == list(range(b.first_step, b.last_step + 1))
