"""Drafting only while it pays: the per-chunk choice from measured acceptance, and an engine whose
drafter keeps less than planned stops drafting yet stays token-identical to AR."""

import pytest

from apar_jax.engine import Engine, Request, tree_signature
from apar_jax.engine.host.draft_control import DraftControl
from apar_jax.engine.setup.tree_plan import BucketChoice
from apar_jax.speculative import step_cost
from apar_jax.speculative.medusa import init_medusa
from apar_jax.speculative.step_cost import StepCosts
from apar_jax.speculative.tree import TokenTree
from tiny_model import IDS, FakeTokenizer, tiny_config

TREE = TokenTree.from_paths([(0,), (0, 0)])
ROOT = TokenTree.from_paths([])


def _control(probe_every=4):
  plan = (BucketChoice(1, TREE, 2.0, 1.5, 2.0 / 1.5),  # E = 2 at 1.5x the no-draft step
          BucketChoice(2, ROOT, 1.0, 1.0, 1.0))
  return DraftControl.from_plan(plan, probe_every)


def test_drafts_while_the_measured_gain_pays_for_the_tree():
  control = _control()
  assert control.expected == {1: 2.0} and control.cost == {1: pytest.approx(1.5)}
  assert control.draft(1) and control.quality == 1.0  # nothing measured: trust the plan
  control.observe(1, row_steps=10, tokens=18)  # 1.8 per step: q = 0.8, 1.8 >= 1.5
  assert control.quality == pytest.approx(0.8) and control.draft(1)
  assert control.draft(2)  # a bucket without a tree is not the controller's business


def test_stops_when_it_does_not_pay_and_probes_every_nth_chunk():
  control = _control(probe_every=4)
  control.observe(1, 10, 11)  # 1.1 per step < 1.5
  assert [control.draft(1) for _ in range(8)] == [False, False, False, True] * 2
  assert control.stats() == {'draft_chunks': 2, 'no_draft_chunks': 6, 'draft_quality': 0.1}
  for _ in range(6):  # the workload changed: recent chunks outweigh the old one
    control.observe(1, 10, 20)
  assert control.draft(1)


def test_counters_are_deltas_and_a_new_state_restarts_them():
  control = _control()
  control.observe_counters(1, (10, 11))
  control.observe_counters(1, (20, 30))  # + (10, 19)
  assert control.gained == pytest.approx(0.7 * 1 + 9)
  control.observe_counters(1, (5, 10))  # a fresh state: counted from zero
  assert control.counters == (5, 10)
  with pytest.raises(ValueError, match='probe_every'):
    DraftControl.from_plan((), 0)


PROMPTS = [[1, 2, 3, 4] * 3, [5, 6, 7] * 4, [9, 9, 9], [20, 21, 20, 21]]


def _engine(params, mode, monkeypatch):
  config = tiny_config(row_buckets=True, max_slots=4, max_requests=4, num_pages=64,
                       max_new_tokens=16, chunk_steps=1)
  kwargs = {}
  if mode != 'ar':
    config.speculative = dict(tree='auto', topk=2, max_tree_nodes=4, step_cost_cache='',
                              probe_every=3)
    costly = {1: 1.0, 2: 1.3, 4: 1.3}  # drafting costs 1.3 steps: pays only if it keeps tokens
    monkeypatch.setattr(step_cost, 'step_costs', lambda model, params, rows, *a, **k: StepCosts(
        {r: costly for r in rows}, {r: {(h, k): 0.0 for h in (1, 2, 3) for k in (1, 2)}
                                    for r in rows}, ()))
    # the plan believes in the drafter; the untrained (zero) heads keep almost nothing
    kwargs = dict(drafter_params=init_medusa(3, 32),
                  drafter_info={'train': {'acceptance': [[0.9, 0.5], [0.9, 0.3], [0.8, 0.2]]}})
  return Engine(config, mode, params=params, control_ids=IDS, tokenizer=FakeTokenizer(), **kwargs)


def test_an_engine_stops_drafting_what_does_not_pay_and_stays_lossless(tiny, monkeypatch):
  _, params = tiny
  requests = [Request(token_ids=p, max_new_tokens=16) for p in PROMPTS]
  ar = [r.token_ids for r in _engine(params, 'ar', monkeypatch).generate(requests)]
  engine = _engine(params, 'medusa', monkeypatch)
  assert engine.fns.drafting_buckets == (1, 2, 4)
  got = engine.generate(requests)
  assert [r.token_ids for r in got] == ar
  stats = engine.last_stats
  assert stats['no_draft_chunks'] > stats['draft_chunks'] > 0
  assert stats['draft_quality'] < 0.5
  assert engine.fns.cache_sizes()['run_chunk'] <= 2 * len(engine.fns.buckets)


def test_apar_lookup_alternating_drafted_and_undrafted_chunks_builds_the_apar_tree(forky_params,
                                                                                    monkeypatch):
  """Undrafted chunks run APAR's own step and keep prompt lookup's history (forks included), so
  switching every chunk changes nothing in the answers."""
  caps = dict(row_buckets=True, max_slots=32, num_pages=400, max_depth=2, max_new_tokens=16,
              chunk_steps=1)
  prompts = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 12, 14]]
  requests = [Request(token_ids=p, max_new_tokens=16) for p in prompts]
  base = Engine(tiny_config(**caps), 'apar', params=forky_params, control_ids=IDS,
                tokenizer=FakeTokenizer())
  want = base.generate(requests)
  config = tiny_config(**caps)
  config.speculative = dict(tree='auto', lookup_num_draft=4, max_tree_nodes=5, step_cost_cache='',
                            lookup_acceptance=(0.9,))
  flat = {1: 1.0, 2: 1.0, 4: 1.0, 5: 1.0}
  monkeypatch.setattr(step_cost, 'step_costs', lambda model, params, rows, *a, **k: StepCosts(
      {r: flat for r in rows}, {r: {(h, 1): 0.0 for h in range(1, 5)} for r in rows}, ()))
  engine = Engine(config, 'apar_lookup', params=forky_params, control_ids=IDS,
                  tokenizer=FakeTokenizer())
  drafting = engine.fns.drafting_buckets
  assert drafting  # the plan drafts everywhere; the controller below says it never pays
  engine.draft_control = DraftControl({r: 2.0 for r in drafting}, {r: 100.0 for r in drafting},
                                      probe_every=2)
  got = engine.generate(requests)
  for w, g in zip(want, got):
    assert tree_signature(g.branches) == tree_signature(w.branches)
    assert g.token_ids == w.token_ids and g.refused_forks == 0
  assert sum(g.forks for g in got) >= 20
  stats = engine.last_stats
  assert abs(stats['draft_chunks'] - stats['no_draft_chunks']) <= 1 and stats['draft_chunks'] > 4
  assert max(g.mean_accepted_tokens for g in got) > 1.2  # the drafted chunks did accept
