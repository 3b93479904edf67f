"""Engine APAR mode against the slow numpy reference (tests/engine/numpy_reference.py), against AR
with forking disabled, and under slot/page exhaustion."""

import json

import numpy as np
import pytest

import numpy_reference as ref
from apar_jax.engine import Engine, Request, tree_signature
from tiny_model import CHILD, EOS, FORK, IDS, FakeTokenizer, tiny_config

PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6, 5, 4, 3, 2, 1, 10, 12, 14]]
NEW = 16
AMPLE = dict(max_slots=32, num_pages=400)  # no fork is ever refused for want of slots or pages


def _engine(params, mode='apar', **caps):
  return Engine(tiny_config(**caps), mode, params=params, control_ids=IDS,
                tokenizer=FakeTokenizer())


def _check_pages(engine):
  s = engine.last_stats
  assert s['free_pages_end'] == s['num_pages']
  assert s['min_refcount_end'] == 0 == s['max_refcount_end']


@pytest.mark.parametrize('max_depth, copies', [(1, 4), (2, 1)])
def test_apar_equals_slow_reference(forky_params, max_depth, copies):
  # copies=1: children forked in the same step wait their turn for the partial-page copy.
  engine = _engine(forky_params, max_depth=max_depth, fork_copies_per_step=copies, row_buckets=True,
                   **AMPLE)
  results = engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS])
  cfg = engine.config
  total_forks = 0
  for prompt, got in zip(PROMPTS, results):
    want = ref.apar_greedy(forky_params, cfg.model, prompt, fork_id=FORK, child_id=CHILD,
                           stop_ids=(EOS,), max_new=NEW, max_depth=max_depth,
                           slot_capacity=engine.caps.slot_capacity)
    assert tree_signature(got.branches) == ref.signature(want)
    want_ids = ref.preorder_text_ids(want, (FORK, CHILD), (EOS,))
    assert got.text == FakeTokenizer().decode(want_ids)
    assert [t for t in got.token_ids if t != EOS] == want_ids
    assert got.forks == len(got.branches) - 1 and got.refused_forks == 0
    assert max(b.depth for b in got.branches) <= max_depth
    total_forks += got.forks
  assert total_forks >= (6 if max_depth == 1 else 20)
  assert max(r.max_live_branches for r in results) >= 3
  apar_steps, sampled = sum(r.decode_steps for r in results), sum(r.sampled_tokens for r in results)
  assert apar_steps < sampled  # branches decode in parallel: fewer steps than tokens
  _check_pages(engine)
  record = json.loads(json.dumps(results[0].to_record()))
  cli_fields = {'prompt', 'mode', 'text', 'token_ids', 'num_generated_tokens', 'decode_steps',
                'wall_time_s', 'forks', 'max_live_branches', 'peak_kv_pages',
                'mean_accepted_tokens', 'attended_kv_tokens'}
  assert cli_fields <= set(record) and record['mode'] == 'apar'
  assert record['mean_accepted_tokens'] == 1.0 and record['attended_kv_tokens'] > 0


def test_apar_with_forking_disabled_equals_ar(forky_params):
  requests = [Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS]
  ar = _engine(forky_params, 'ar').generate(requests)
  apar_engine = _engine(forky_params, max_live_branches=1)  # the root alone fills the quota
  apar = apar_engine.generate(requests)
  for a, b in zip(ar, apar):
    assert a.token_ids == b.token_ids and a.decode_steps == b.decode_steps and b.forks == 0
  assert sum(r.refused_forks for r in apar) > 0  # the model wanted to fork; the quota said no
  _check_pages(apar_engine)


def _branch_contexts(prompt, branches):
  by_id = {b.branch_id: b for b in branches}

  def context(b):
    if b.parent < 0:
      return list(prompt)
    parent = by_id[b.parent]
    return context(parent) + list(parent.tokens[:b.fork_point + 1]) + [CHILD]

  return {b.branch_id: context(b) for b in branches}


def test_exhaustion_refuses_forks_never_corrupts(forky_params):
  engine = _engine(forky_params, max_slots=5, num_pages=20, max_depth=2)
  results = engine.generate([Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS])
  assert sum(r.refused_forks for r in results) > 0
  _check_pages(engine)
  cfg = engine.config.model
  for prompt, r in zip(PROMPTS, results):
    contexts = _branch_contexts(prompt, r.branches)
    for b in r.branches:  # every token is the greedy choice of its view, [Fork] allowed or banned
      seq = contexts[b.branch_id] + list(b.tokens)
      logits = ref.forward_logits(forky_params, cfg, seq)
      start = len(contexts[b.branch_id]) - 1
      for i, tok in enumerate(b.tokens):
        row = logits[start + i].copy()
        row[CHILD] = -np.inf
        with_fork = int(np.argmax(row))
        row[FORK] = -np.inf
        assert tok in (with_fork, int(np.argmax(row))), (b, i)
      assert len(b.tokens) == NEW or b.tokens[-1] == EOS
    children = {(c.parent, c.fork_point) for c in r.branches if c.parent >= 0}
    forks = {(b.branch_id, i) for b in r.branches for i, t in enumerate(b.tokens) if t == FORK}
    assert children == forks  # every [Fork] in the output has its child, and only those


def test_apar_sampling_is_reproducible_and_batch_invariant(forky_params):
  engine = _engine(forky_params, **AMPLE)
  req = lambda seed, p=PROMPTS[0]: Request(token_ids=p, max_new_tokens=NEW, temperature=1.0,  # noqa
                                           seed=seed)
  [alone] = engine.generate([req(5)])
  batch = engine.generate([req(1, PROMPTS[2]), req(5), req(2, PROMPTS[1])])
  assert tree_signature(batch[1].branches) == tree_signature(alone.branches)
  assert batch[1].text == alone.text
  _check_pages(engine)


def test_step_updates_the_kv_pool_in_place(forky_params):
  """No full copy of a layer's page pool inside the compiled APAR loop (fork copies included)."""
  import re

  import jax.numpy as jnp
  engine = _engine(forky_params, **AMPLE)
  state = engine._take_state()
  caps, cfg = engine.caps, engine.config.model
  hlo = engine.fns.run_chunk.lower(forky_params, state, jnp.zeros((1, caps.max_slots), bool),
                                   jnp.int32(4)).compile().as_text()
  pool = f'{caps.num_pages + 1},{caps.page_size},{cfg.n_kv_heads},{cfg.head_dim}]'
  for shape in (f'f32[{pool}', f'f32[1,{pool}'):  # one shard's pool, and the stacked one
    assert not re.findall(re.escape(shape) + r'\{[0-9,]*\} copy\(', hlo)


def test_pallas_kernel_in_interpret_mode_gives_the_same_trees(forky_params):
  """The engine through the TPU kernel (interpret mode on CPU) == through the jnp reference."""
  caps = dict(max_slots=4, num_pages=24, page_size=8, pages_per_slot=4, max_new_tokens=8)
  requests = [Request(token_ids=[1, 2, 3, 4, 5], max_new_tokens=8), Request(token_ids=[33],
                                                                             max_new_tokens=8)]
  trees = {}
  for impl in ('reference', 'pallas_interpret'):
    engine = _engine(forky_params, attention_impl=impl, **caps)
    results = engine.generate(requests)
    trees[impl] = [tree_signature(r.branches) for r in results]
    assert sum(r.forks for r in results) > 0
  assert trees['reference'] == trees['pallas_interpret']
