"""Speculative engine modes on the tiny model: greedy token identity with AR (50 prompts, every
drafter), identical APAR trees with drafts (forks accepted mid-window), one compile per mode, page
accounting, and clear errors before compiling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.engine import Engine, Request, build_engine, tree_signature
from apar_jax.model import CausalSpec, build_model
from apar_jax.modes import split_mode
from apar_jax.speculative import DrafterMismatchError, TreeError, save_drafter
from apar_jax.speculative.hidden_transfer import init_hidden_transfer
from apar_jax.speculative.medusa import init_medusa
from apar_jax.speculative.top_tokens import top_tokens
from tiny_model import FORKY, IDS, FakeTokenizer, tiny_config, tiny_params

D_MODEL = 32
# Per drafter: config.speculative overrides and (untrained, perturbed) drafter params. Losslessness
# does not depend on draft quality; the noise makes guesses vary, the wide Medusa tree makes
# rank > 0 nodes get accepted (their K/V then move in the compaction).
SPEC = {
    'lookup': dict(tree='chain', lookup_num_draft=4),
    'medusa': dict(tree='(0,),(1,),(2,),(3,),(4,),(5,),(0,0),(1,0),(0,1),(0,0,0)', topk=6,
                   max_tree_nodes=12),
    'hidden_transfer': dict(tree='(0,),(1,),(0,0)', topk=2, max_tree_nodes=4),
    'token_recycling': dict(tree='(0,),(1,),(2,),(0,0),(1,0),(0,1),(0,0,0)', recycling_depth=3,
                            recycling_topk=3, max_tree_nodes=8),
}


def _noisy(tree, seed, scale):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(treedef, [x + scale * jax.random.normal(k, x.shape)
                                      for x, k in zip(leaves, keys)])


def drafter_kwargs(kind):
  if kind == 'medusa':
    return dict(drafter_params=_noisy(init_medusa(3, D_MODEL), 1, 0.3))
  if kind == 'hidden_transfer':
    return dict(drafter_params=_noisy(init_hidden_transfer(2, D_MODEL), 2, 0.05),
                drafter_info={'transfer_layer': 1})
  return {}


def make_engine(params, mode, spec_overrides=None, **caps):
  config = tiny_config(**caps)
  _, kind = split_mode(mode)
  if kind is not None:
    config.speculative = dict(SPEC[kind], **(spec_overrides or {}))
  return Engine(config, mode, params=params, control_ids=IDS, tokenizer=FakeTokenizer(),
                **(drafter_kwargs(kind) if kind else {}))


def check_pages(engine):
  s = engine.last_stats
  assert s['free_pages_end'] == s['num_pages']
  assert s['min_refcount_end'] == 0 == s['max_refcount_end']


def prompts_50():
  rng = np.random.default_rng(0)
  out = [list(map(int, rng.integers(0, 60, size=rng.integers(1, 14)))) for _ in range(44)]
  out += [[1, 2, 3, 4] * 3, [5, 6, 7] * 4, [9, 9, 9, 9], [20, 21, 20, 21, 20], [7] * 13, [42, 1]]
  return out


CAPS = dict(max_slots=16, max_requests=16, num_pages=160, max_new_tokens=10)
NEW = 10


@pytest.fixture(scope='module')
def ar_results(tiny):
  _, params = tiny
  engine = make_engine(params, 'ar', **CAPS)
  return engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in prompts_50()])


def test_token_recycling_learns_the_prompt_at_prefill(tiny):
  """The table's rows of the prompt tokens (the last one is fed by the first step) are the top-k
  successors of the model's own forward over the prompt, before any token is generated."""
  config, params = tiny
  engine = make_engine(params, 'token_recycling', **CAPS)
  prompt = [5, 9, 12, 7, 3]
  engine.generate([Request(token_ids=prompt, max_new_tokens=1)])
  table = np.asarray(engine._state.spec.table)[0]  # [V, k] of the one data shard
  model = build_model(config.model)
  logits = model.apply({'params': params}, jnp.asarray([prompt]),
                       jnp.arange(len(prompt))[None], CausalSpec()).logits[0]  # [5, V]
  want = np.asarray(top_tokens(logits, table.shape[1]))
  np.testing.assert_array_equal(table[prompt[:-1]], want[:-1])


@pytest.mark.parametrize('mode', ['lookup', 'medusa', 'hidden_transfer', 'token_recycling'])
def test_greedy_speculative_equals_ar_on_50_prompts(tiny, ar_results, mode):
  _, params = tiny
  engine = make_engine(params, mode, row_buckets=True, **CAPS)  # AR's reference runs without
  prompts = prompts_50()
  results = engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in prompts])
  for p, want, got in zip(prompts, ar_results, results):
    assert got.token_ids == want.token_ids, (mode, p)
    assert got.mode == mode
  check_pages(engine)
  accepted = [r.mean_accepted_tokens for r in results]
  assert all(a >= 1.0 for a in accepted)
  assert np.mean(accepted) > 1.05, accepted  # several tokens per step somewhere
  steps = sum(r.decode_steps for r in results)
  assert steps < sum(r.num_generated_tokens for r in results)
  if mode == 'token_recycling':  # every accepted draft came from the context or the table
    stats = engine.last_stats
    drafted = sum(r.sampled_tokens for r in results) - steps  # stop tokens included
    assert stats['recycled_accepted_context'] + stats['recycled_accepted_table'] == drafted
    assert stats['recycled_accepted_table'] > 0
  tally = engine.acceptance_tally  # [2, K, topk] (tried, kept) per (level, rank): this run's
  assert tally[1].sum() == sum(r.sampled_tokens for r in results) - steps
  assert np.all(tally[1] <= tally[0]) and tally[0, 0].sum() > 0
  # One compile per function, across a second run with another batch size and prompt lengths.
  engine.generate([Request(token_ids=[3, 4, 5], max_new_tokens=4)])
  compiled = engine.fns.cache_sizes()
  assert compiled.pop('cancel') == 0  # nothing was cancelled
  assert 1 <= compiled.pop('run_chunk') <= len(engine.fns.buckets)  # one per row bucket used
  assert set(compiled.values()) == {1}


@pytest.mark.parametrize('mode', ['apar_lookup', 'apar_medusa', 'apar_hidden_transfer',
                                  'apar_token_recycling'])
def test_apar_speculative_builds_the_apar_tree(forky_params, mode):
  prompts = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 12, 14]]
  caps = dict(max_slots=32, num_pages=400, max_depth=2)
  requests = [Request(token_ids=p, max_new_tokens=16) for p in prompts]
  want = make_engine(forky_params, 'apar', **caps).generate(requests)
  engine = make_engine(forky_params, mode, **caps)
  got = engine.generate(requests)
  for w, g in zip(want, got):
    assert tree_signature(g.branches) == tree_signature(w.branches)
    assert g.token_ids == w.token_ids and g.refused_forks == 0
  assert sum(g.forks for g in got) >= 20
  check_pages(engine)
  if mode == 'apar_lookup':  # forks inside multi-token steps
    assert max(g.mean_accepted_tokens for g in got) > 1.5
    assert sum(g.decode_steps for g in got) < sum(w.decode_steps for w in want)


def test_budget_cuts_acceptance_and_sampling_runs(tiny):
  _, params = tiny
  engine = make_engine(params, 'lookup', **CAPS)
  [ar] = make_engine(params, 'ar', **CAPS).generate([Request(token_ids=[7] * 13, max_new_tokens=3)])
  [got] = engine.generate([Request(token_ids=[7] * 13, max_new_tokens=3)])
  assert got.token_ids == ar.token_ids and got.sampled_tokens <= 3
  sampled = engine.generate([Request(token_ids=p, max_new_tokens=NEW, temperature=1.0, seed=i)
                             for i, p in enumerate(prompts_50()[:8])])
  again = engine.generate([Request(token_ids=p, max_new_tokens=NEW, temperature=1.0, seed=i)
                           for i, p in enumerate(prompts_50()[:8])])
  assert [r.token_ids for r in sampled] == [r.token_ids for r in again]  # reproducible
  assert all(1 <= r.sampled_tokens <= NEW for r in sampled)
  check_pages(engine)


# ---- bad input: clear errors before anything compiles -------------------------------------------
def test_drafter_checkpoint_for_another_model(tmp_path, tiny):
  config, params = tiny
  other = tiny_params(config, seed=5)
  path = save_drafter(str(tmp_path / 'medusa'), init_medusa(3, D_MODEL), kind='medusa',
                      num_heads=3, base_params=other, model_cfg=config.model)
  cfg = tiny_config()
  cfg.speculative = dict(medusa_path=path, tree='chain')
  with pytest.raises(DrafterMismatchError, match='another base model'):
    build_engine(cfg, 'medusa', params=params, control_ids=IDS)
  # The same checkpoint on its own base model loads.
  build_engine(cfg, 'medusa', params=other, control_ids=IDS)
  with pytest.raises(ValueError, match='build_engine'):  # the Engine itself loads nothing
    Engine(cfg, 'medusa', params=other, control_ids=IDS, tokenizer=FakeTokenizer())


def test_missing_checkpoint_says_how_to_train_one(tiny, tmp_path):
  _, params = tiny
  cfg = tiny_config()
  cfg.speculative = dict(hidden_transfer_path=str(tmp_path / 'nothing'))
  with pytest.raises(FileNotFoundError, match='train_drafter'):
    build_engine(cfg, 'hidden_transfer', params=params, control_ids=IDS)


def test_tree_deeper_than_the_draft(tiny):
  _, params = tiny
  with pytest.raises(TreeError, match='levels deep'):
    make_engine(params, 'medusa', dict(tree='(0,),(0,0),(0,0,0),(0,0,0,0)'))
  with pytest.raises(TreeError, match='levels deep'):
    make_engine(params, 'lookup', dict(tree='(0,),(0,0),(0,0,0)', lookup_num_draft=2))
  with pytest.raises(TreeError, match='rank'):
    make_engine(params, 'medusa', dict(tree='(0,),(7,)'))


def test_tree_too_large_for_the_capacities(tiny):
  _, params = tiny
  with pytest.raises(TreeError, match='max_tree_nodes'):
    make_engine(params, 'medusa', dict(max_tree_nodes=4))
  engine = make_engine(params, 'medusa', num_pages=4)  # 2 + 8 tokens + a window of 11: 6 pages
  with pytest.raises(ValueError, match='verification window'):
    engine.generate([Request(token_ids=[1, 2, 3], max_new_tokens=8)])


def test_unknown_mode_and_acceptance(tiny):
  _, params = tiny
  with pytest.raises(ValueError, match='unknown engine mode'):
    make_engine(params, 'apar_oracle')
  with pytest.raises(ValueError, match='acceptance'):
    make_engine(params, 'lookup', dict(acceptance='fast'))


def test_cli_records_fill_mean_accepted_tokens(tiny, forky_params):
  import types

  from apar_jax.engine.host.cli_api import generate_records
  config, _ = tiny
  config = tiny_config()
  config.speculative = SPEC['lookup']
  runtime = types.SimpleNamespace(config=config, params=forky_params, tokenizer=FakeTokenizer(),
                                  mesh=None)
  prompts, ids = ['a', 'b'], [[1, 2, 3, 4, 5], [7, 8, 7, 8, 7]]
  want = generate_records(runtime, 'apar', prompts, ids, max_new_tokens=16, warmup=False)
  got = generate_records(runtime, 'apar_lookup', prompts, ids, max_new_tokens=16, warmup=False)
  for w, g in zip(want, got):
    assert g['mode'] == 'apar_lookup' and g['token_ids'] == w['token_ids']
    assert g['mean_accepted_tokens'] >= 1.0 and w['mean_accepted_tokens'] == 1.0
    assert g['refused_forks'] == w['refused_forks'] == 0
  assert got[0]['forks'] > 0 and max(g['mean_accepted_tokens'] for g in got) > 1.0


def test_typical_acceptance_runs(tiny, ar_results):
  """Typical acceptance (LOSSY under sampling) is exactly greedy at temperature 0."""
  _, params = tiny
  engine = make_engine(params, 'medusa', dict(acceptance='typical'), **CAPS)
  prompts = prompts_50()[:16]
  got = engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in prompts])
  assert [r.token_ids for r in got] == [r.token_ids for r in ar_results[:16]]
  sampled = engine.generate([Request(token_ids=p, max_new_tokens=NEW, temperature=1.0, seed=i)
                             for i, p in enumerate(prompts)])
  assert all(0 <= t < 64 and t not in (60, 61) for r in sampled for t in r.token_ids)
  check_pages(engine)
