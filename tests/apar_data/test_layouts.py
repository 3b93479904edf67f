"""Training rows: loss masks, both layouts give the same loss, packing's token saving."""

import importlib.util
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.apar_data.examples import plain_example, tree_example
from apar_jax.apar_data.layouts import branch_layout, branch_positions, token_counts
from apar_jax.apar_data.packing import (pack_rows, weight_list_ends, weight_targets,
                                        weight_tree_roots)
from apar_jax.model import CausalSpec, build_model
from apar_jax.testing.accumulation_depth import forward_terms
from apar_jax.testing.rounding import assert_close_across_orders
from apar_jax.training.loss import packed_loss_sums, token_nll

VOCAB, EOS, FORK, CHILD = 64, 2, 62, 63


def _tree(rng, n_items=3, prompt_len=5):
  prompt = list(rng.integers(3, 60, prompt_len))
  parts = [list(rng.integers(3, 60, rng.integers(1, 5))) for _ in range(n_items + 1)]
  details = [list(rng.integers(3, 60, rng.integers(2, 7))) for _ in range(n_items)]
  return tree_example(prompt, parts, details, fork_id=FORK, child_id=CHILD, eos_id=EOS)


def test_loss_masks():
  ex = tree_example([10, 11, 12], [[20, 21], [22], [23]], [[30, 31], [32, 33, 34]], fork_id=FORK,
                    child_id=CHILD, eos_id=EOS)
  root, c1, c2 = ex.branches
  assert root.tokens == (10, 11, 12, 20, 21, FORK, 22, FORK, 23, EOS)
  assert c1.tokens == (CHILD, 30, 31, EOS) and c1.fork_at == 5 and c2.fork_at == 7
  rows = pack_rows([ex], 32, 4)
  w, tgt, tok = rows.weights[0], rows.targets[0], rows.tokens[0]
  targets = [int(t) for t, on in zip(tgt, w) if on]
  # Prompt never a target; [Fork] is; [Child] never; every branch ends in an EOS target.
  assert targets == [20, 21, FORK, 22, FORK, 23, EOS, 30, 31, EOS, 32, 33, 34, EOS]
  assert CHILD not in targets and w[:2].sum() == 0
  assert ex.num_targets == len(targets)
  # Positions: [Child] right after its [Fork]; parent's next token at the same position.
  pos = branch_positions(ex)
  assert pos[1][0] == pos[0][5] + 1 == pos[0][6]
  assert list(rows.positions[0, 10:14]) == [6, 7, 8, 9]
  assert list(rows.branch_parent[0, :3]) == [-1, 0, 0] and list(rows.fork_index[0, :3]) == [-1, 5, 7]
  # APAR's layout: child row = parent through its [Fork], [Child], detail, EOS; only detail+EOS count.
  child_row = branch_layout(ex)[2].branches[0]
  assert child_row.tokens == root.tokens[:8] + c2.tokens
  assert [t for t, on in zip(child_row.targets(), child_row.target_flags()) if on] == [32, 33, 34, EOS]
  plain = plain_example([1, 2], [5, 6], EOS).branches[0]
  assert [t for t, on in zip(plain.targets(), plain.target_flags()) if on] == [5, 6, EOS]


def _tiny_config():
  path = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'tiny.py')
  spec = importlib.util.spec_from_file_location('_tiny_cfg_layouts', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


@pytest.fixture(scope='module')
def tiny():
  cfg = _tiny_config()
  cfg.model.vocab_size = VOCAB
  model = build_model(cfg.model)
  x = jnp.zeros((1, 2), jnp.int32)
  return model, nn.unbox(model.init(jax.random.key(1), x, x, CausalSpec())['params'])


def _branch_rows_loss(model, params, examples):
  """APAR's layout, independently: one right-padded batch row per branch, plain causal attention."""
  rows = [r.branches[0] for ex in examples for r in branch_layout(ex)]
  t = max(len(b.tokens) for b in rows)
  pad = lambda xs: list(xs) + [0] * (t - len(xs))  # noqa: E731
  tokens = jnp.asarray([pad(b.tokens) for b in rows], jnp.int32)
  targets = jnp.asarray([pad(b.targets()) for b in rows], jnp.int32)
  w = jnp.asarray([pad(b.target_flags()) for b in rows], jnp.float32)
  valid = jnp.asarray([[i < len(b.tokens) for i in range(t)] for b in rows])
  positions = jnp.broadcast_to(jnp.arange(t), tokens.shape)
  logits = model.apply({'params': params}, tokens, positions, CausalSpec(valid)).logits
  return float(jnp.sum(token_nll(logits, targets) * w)), float(jnp.sum(w))


def test_both_layouts_give_the_same_loss(tiny):
  model, params = tiny
  rng = np.random.default_rng(0)
  examples = [_tree(rng, n) for n in (3, 4, 5)] + [plain_example([5, 6, 7], [8, 9, 10], EOS)]
  want_sum, want_count = _branch_rows_loss(model, params, examples)

  packed = pack_rows(examples, seq_len=64, max_branches=8)  # several trees share a row
  assert packed.dropped == 0 and packed.num_rows < len(examples)
  loss_sums = jax.jit(lambda p, batch: packed_loss_sums(model, p, batch))
  got_sum, got_count = loss_sums(params, packed.take(np.arange(packed.num_rows)))
  assert float(got_count) == want_count
  # The summed NLL: a forward over at most 96 keys, the vocabulary normaliser, the sum of targets.
  terms = forward_terms(model.cfg, keys=96) + VOCAB + int(want_count)
  assert_close_across_orders(np.float32(got_sum), np.float32(want_sum), terms=terms,
                             err_msg='packed rows')

  rows = [r for ex in examples for r in branch_layout(ex)]
  per_branch = pack_rows(rows, seq_len=96, max_branches=8)
  b_sum, b_count = loss_sums(params, per_branch.take(np.arange(per_branch.num_rows)))
  assert float(b_count) == want_count
  assert_close_across_orders(np.float32(b_sum), np.float32(want_sum), terms=terms,
                             err_msg='one branch per row')

  counts = token_counts(examples)
  assert counts.packed < counts.branch_layout and 0 < counts.saving < 1
  print(f'packing saves {100 * counts.saving:.1f}% of the tokens '
        f'({counts.packed} vs {counts.branch_layout})')


def test_packing_drops_what_does_not_fit():
  rng = np.random.default_rng(1)
  big = _tree(rng, 5)
  rows = pack_rows([big, plain_example([1], [2], EOS)], seq_len=big.num_tokens - 1, max_branches=8)
  assert rows.dropped == 1 and rows.num_rows == 1
  rows = pack_rows([big], seq_len=200, max_branches=3)
  assert rows.dropped == 1 and rows.num_rows == 0
  with pytest.raises(ValueError, match='seq_len'):
    pack_rows([big], seq_len=1, max_branches=3)


def test_fork_targets_weighted_and_nothing_else():
  ex = tree_example([10, 11, 12], [[20, 21], [22], [23]], [[30, 31], [32, 33, 34]], fork_id=FORK,
                    child_id=CHILD, eos_id=EOS)
  rows = pack_rows([ex], 32, 4)
  heavy = weight_targets(rows, FORK, 5.0)
  on = rows.weights > 0
  fork = on & (rows.targets == FORK)
  assert fork.sum() == 2
  np.testing.assert_array_equal(heavy.weights[fork], 5.0)
  np.testing.assert_array_equal(heavy.weights[~fork], rows.weights[~fork])  # padding stays 0
  assert heavy.weights.sum() == rows.weights.sum() + 2 * 4.0
  np.testing.assert_array_equal(heavy.tokens, rows.tokens)
  with pytest.raises(ValueError, match='>= 0'):
    weight_targets(rows, FORK, -1.0)


def test_tree_roots_weighted_and_nothing_else():
  ex = tree_example([10, 11, 12], [[20, 21], [22], [23]], [[30, 31], [32, 33, 34]], fork_id=FORK,
                    child_id=CHILD, eos_id=EOS)
  plain = plain_example([1, 2], [40, 41, 42], EOS)
  rows = pack_rows([ex, plain, ex], 64, 8)
  assert rows.num_rows == 1
  heavy = weight_tree_roots(rows, 3.0)
  on = rows.weights[0] > 0
  got = [(int(t), float(w)) for t, w, o in zip(rows.targets[0], heavy.weights[0], on) if o]
  # By hand: a tree's root targets (titles, [Fork]s, EOS) x3; children and the plain answer x1.
  tree = ([(t, 3.0) for t in (20, 21, FORK, 22, FORK, 23, EOS)]
          + [(t, 1.0) for t in (30, 31, EOS, 32, 33, 34, EOS)])
  assert got == tree + [(t, 1.0) for t in (40, 41, 42, EOS)] + tree
  np.testing.assert_array_equal(heavy.weights[0][~on], 0.0)  # padding stays 0
  np.testing.assert_array_equal(heavy.tokens, rows.tokens)
  with pytest.raises(ValueError, match='>= 0'):
    weight_tree_roots(rows, -1.0)


def test_list_ends_weighted_and_nothing_else():
  ex = tree_example([10, 11, 12], [[20, 21], [22], [23, 24, 25]], [[30, 31], [32, 33, 34]],
                    fork_id=FORK, child_id=CHILD, eos_id=EOS)
  shut = tree_example([10], [[20], [22]], [[30]], fork_id=FORK, child_id=CHILD, eos_id=EOS)
  plain = plain_example([1, 2], [40, FORK, 42], EOS)  # a [Fork] in a plain answer is no list end
  rows = pack_rows([ex, plain, shut], 64, 8)
  assert rows.num_rows == 1
  heavy = weight_list_ends(rows, FORK, 4.0)
  on = rows.weights[0] > 0
  got = [(int(t), float(w)) for t, w, o in zip(rows.targets[0], heavy.weights[0], on) if o]
  # By hand: the two targets from the root's last [Fork] on (its closing's first two tokens) x4;
  # a closing of one token: that token and the EOS; everything else x1.
  tree = ([(t, 1.0) for t in (20, 21, FORK, 22, FORK)] + [(23, 4.0), (24, 4.0), (25, 1.0),
                                                           (EOS, 1.0)]
          + [(t, 1.0) for t in (30, 31, EOS, 32, 33, 34, EOS)])
  shut_tree = [(20, 1.0), (FORK, 1.0), (22, 4.0), (EOS, 4.0), (30, 1.0), (EOS, 1.0)]
  assert got == tree + [(t, 1.0) for t in (40, FORK, 42, EOS)] + shut_tree
  np.testing.assert_array_equal(heavy.weights[0][~on], 0.0)  # padding stays 0
  with pytest.raises(ValueError, match='>= 0'):
    weight_list_ends(rows, FORK, -1.0)
