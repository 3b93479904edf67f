"""Trees chosen from measured step cost: the rule on synthetic costs, and engines whose row buckets
verify different trees (or none) stay token-identical to AR."""

import numpy as np
import pytest

from apar_jax.engine import Engine, Request
from apar_jax.engine.setup import tree_plan
from apar_jax.engine.device.spec_config import SpecConfig
from apar_jax.speculative import step_cost
from apar_jax.speculative.drafter import Drafter
from apar_jax.speculative.medusa import init_medusa
from apar_jax.speculative.step_cost import StepCosts
from apar_jax.speculative.tree import TokenTree
from tiny_model import IDS, FakeTokenizer, tiny_config

ACC = np.array([[0.8, 0.3], [0.6, 0.2], [0.5, 0.1]])  # [depth, rank]
MEDUSA = Drafter('medusa', 3, 2)
FLAT = {1: 1.0, 2: 1.0, 4: 1.0, 8: 1.0}  # an accelerator: width is free
STEEP = {1: 1.0, 2: 2.0, 4: 4.0, 8: 8.0}  # every query token costs a full step


def _costs(forward_by_rows, draft_s=0.0):
  return StepCosts({r: dict(f) for r, f in forward_by_rows.items()},
                   {r: {(h, k): draft_s for h in (1, 2, 3) for k in (1, 2)}
                    for r in forward_by_rows}, ())


def test_flat_cost_takes_the_largest_tree_steep_cost_none():
  plan = tree_plan.plan_trees(ACC, _costs({1: STEEP, 4: FLAT}), MEDUSA, [1, 4], 8, 4)
  assert [c.rows for c in plan] == [1, 4]
  assert plan[0].tree.num_nodes == 1 and plan[0].speedup == pytest.approx(1.0)
  assert plan[1].tree.num_nodes == 8 and plan[1].speedup > 2
  assert 'no draft' in plan[0].describe() and 'T=8' in plan[1].describe()


def test_the_choice_maximises_expected_tokens_per_second():
  mid = {1: 1.0, 2: 1.2, 4: 1.9, 8: 3.5}
  plan = tree_plan.plan_trees(ACC, _costs({1: mid}, draft_s=0.05), MEDUSA, [1], 8, 4)[0]
  gains = tree_plan.gain_curve(ACC, 8)
  rates = []
  for t in range(1, 9):
    tree = TokenTree.from_paths(tree_plan.greedy_paths(ACC, t))
    secs = tree_plan.step_seconds(_costs({1: mid}, 0.05), 1, tree, MEDUSA, 4)
    rates.append(gains[t - 1] / secs)
  assert plan.tree.num_nodes == int(np.argmax(rates)) + 1
  assert plan.expected_tokens == pytest.approx(gains[plan.tree.num_nodes - 1])


def test_drafter_cost_and_hidden_transfer_width():
  costly = tree_plan.plan_trees(ACC, _costs({1: FLAT}, draft_s=5.0), MEDUSA, [1], 8, 4)[0]
  assert costly.tree.num_nodes == 1  # a drafter slower than what it keeps: no draft
  ht = Drafter('hidden_transfer', 3, 2, transfer_layer=2)
  tree = TokenTree.from_paths([(0,), (0, 0)])
  assert tree_plan.query_tokens(tree, ht, 4) == pytest.approx(3 + 0.5 * 3 * 2)
  assert tree_plan.forward_sizes(ht, 4) == [1, 2, 4, 8, 16]
  assert tree_plan.forward_sizes(MEDUSA, 8) == [1, 2, 4, 8]


def test_bucket_trees_nest_and_for_rows_picks_the_bucket():
  a, b = TokenTree.from_paths([]), TokenTree.from_paths([(0,), (1,)])
  spec = SpecConfig(MEDUSA, b, 'exact', ((1, a), (4, b)))
  assert spec.for_rows(1).tree == a and spec.for_rows(2).tree == b and spec.for_rows(16).tree == b
  assert spec.for_rows(1).bucket_trees == () and spec.drafts
  assert not SpecConfig(MEDUSA, a).drafts


def _engine(params, mode, monkeypatch, forward_by_rows, **caps):
  config = tiny_config(row_buckets=True, **caps)
  if mode != 'ar':
    config.speculative = dict(tree='auto', topk=2, max_tree_nodes=6, step_cost_cache='')
    monkeypatch.setattr(step_cost, 'step_costs',
                        lambda model, params, rows, *a, **k: _costs(
                            {r: forward_by_rows(r) for r in rows}))
  kwargs = {} if mode == 'ar' else dict(drafter_params=init_medusa(3, 32),
                                        drafter_info={'train': {'acceptance': ACC.tolist()}})
  return Engine(config, mode, params=params, control_ids=IDS, tokenizer=FakeTokenizer(), **kwargs)


PROMPTS = [[1, 2, 3, 4] * 3, [5, 6, 7] * 4, [9, 9, 9], [20, 21, 20, 21], [7] * 5, [42, 1]]
CAPS = dict(max_slots=4, max_requests=4, num_pages=64, max_new_tokens=12)


def _run(engine):
  return [r.token_ids for r in engine.generate([Request(token_ids=p, max_new_tokens=12)
                                                for p in PROMPTS])]


def test_per_bucket_trees_are_token_identical_to_ar(tiny, monkeypatch):
  _, params = tiny
  ar = _run(_engine(params, 'ar', monkeypatch, None, **CAPS))
  # one row: no draft; two or more rows: width is free, the largest tree
  engine = _engine(params, 'medusa', monkeypatch, lambda r: STEEP if r == 1 else FLAT, **CAPS)
  sizes = {c.rows: c.tree.num_nodes for c in engine.tree_plan}
  assert sizes == {1: 1, 2: 6, 4: 6}
  assert engine.speculative is not None and engine.speculative.spec.tree.num_nodes == 6
  assert _run(engine) == ar
  assert engine.fns.cache_sizes()['run_chunk'] <= len(engine.fns.buckets) + len(
      engine.fns.drafting_buckets)


def test_no_bucket_drafts_runs_the_base_step(tiny, monkeypatch):
  _, params = tiny
  ar = _run(_engine(params, 'ar', monkeypatch, None, **CAPS))
  engine = _engine(params, 'medusa', monkeypatch, lambda r: STEEP, **CAPS)
  assert [c.tree.num_nodes for c in engine.tree_plan] == [1, 1, 1]
  assert engine.speculative is None and engine.caps.slack == 0
  results = engine.generate([Request(token_ids=p, max_new_tokens=12) for p in PROMPTS])
  assert [r.token_ids for r in results] == ar
  assert all(r.mean_accepted_tokens == pytest.approx(1.0) for r in results)
