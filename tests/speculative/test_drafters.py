"""Drafters: the layer runner reproduces the model, Medusa / Hidden Transfer shapes and initial
behaviour, Hidden Transfer inside verification == the extra pass, prompt lookup vs a Python walk."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tiny import tiny_model

from apar_jax.model import CausalSpec, PagedCache, PagedSpec
from apar_jax.speculative import hidden_transfer, layer_runner, medusa, prompt_lookup
from apar_jax.speculative.compaction import compact_paged
from apar_jax.speculative.tree import TokenTree
from apar_jax.testing.accumulation_depth import forward_terms
from apar_jax.testing.rounding import assert_close_across_orders

TOKENS = jnp.asarray([[5, 9, 11, 3, 60, 2, 7], [1, 2, 3, 4, 5, 6, 7]], jnp.int32)
POS = jnp.broadcast_to(jnp.arange(7), (2, 7))


@pytest.fixture(scope='module')
def tiny():
  return tiny_model(vocab=64, n_layers=3, seed=0)


@pytest.mark.parametrize('layer', [0, 2, 3])
def test_layer_runner_reproduces_the_forward(tiny, layer):
  model, params = tiny
  cfg = model.cfg
  out, h = layer_runner.forward_with_layer_hidden(model, params, TOKENS, POS, CausalSpec(), None,
                                                  layer)
  ref = model.apply({'params': params}, TOKENS, POS, CausalSpec(), return_hidden=True)
  terms = forward_terms(cfg, keys=TOKENS.shape[1])  # bounds every prefix of the forward too
  assert_close_across_orders(out.logits, ref.logits, terms=terms, err_msg='logits')
  x0 = layer_runner.embed(params, cfg, TOKENS)
  below, _ = layer_runner.run_layers(params, cfg, x0, POS, CausalSpec(), None, 0, layer)
  assert_close_across_orders(h, below, terms=terms, err_msg=f'hidden below layer {layer}')
  x, _ = layer_runner.run_layers(params, cfg, h, POS, CausalSpec(), None, layer, cfg.n_layers)
  hidden = layer_runner.final_norm(params, cfg, x)
  assert_close_across_orders(hidden, ref.hidden, terms=terms, err_msg='final hidden')
  assert_close_across_orders(layer_runner.lm_logits(params, cfg, hidden), ref.logits, terms=terms,
                             err_msg='logits from the hidden')


def test_medusa_zero_init_predicts_the_base_next_token(tiny):
  model, params = tiny
  ref = model.apply({'params': params}, TOKENS, POS, CausalSpec(), return_hidden=True)
  heads = medusa.init_medusa(4, 32)
  assert set(heads) == {f'head_{i}' for i in range(4)}
  assert all(float(jnp.abs(v).max()) == 0 for v in jax.tree.leaves(heads))
  draft = medusa.propose(heads, ref.hidden[:, -1], layer_runner.lm_head_fn(params, model.cfg), 3)
  assert draft.shape == (2, 4, 3) and draft.dtype == jnp.int32
  base_top = jax.lax.top_k(ref.logits[:, -1], 3)[1]
  for i in range(4):
    np.testing.assert_array_equal(draft[:, i], base_top)
  # A trained (non-zero) head changes its guesses.
  bumped = jax.tree.map(lambda v: v + 0.5, heads)
  assert not np.array_equal(medusa.propose(bumped, ref.hidden[:, -1],
                                           layer_runner.lm_head_fn(params, model.cfg), 3), draft)


def test_hidden_transfer_identity_at_the_last_layer_predicts_the_base_next_token(tiny):
  """With l = L the pseudo state skips every layer: the identity map reproduces the base head."""
  model, params = tiny
  cfg = model.cfg
  ht = hidden_transfer.init_hidden_transfer(3, 32)
  assert ht['kernel'].shape == (3, 32, 32) and ht['bias'].shape == (3, 32)
  out, h = layer_runner.forward_with_layer_hidden(model, params, TOKENS, POS, CausalSpec(), None,
                                                  cfg.n_layers)
  pseudo = hidden_transfer.pseudo_states(ht, h[:, -1])
  assert pseudo.shape == (2, 3, 32)
  logits = hidden_transfer.pseudo_logits_from_upper(params, cfg, pseudo)
  assert_close_across_orders(logits[:, 0], out.logits[:, -1],
                             terms=forward_terms(cfg, keys=TOKENS.shape[1]),
                             err_msg='pseudo logits')


def _paged(model, s, pages_per_row, page_size=8):
  cfg = model.cfg
  caches = tuple(PagedCache.zeros(s * pages_per_row, page_size, cfg.n_kv_heads, cfg.head_dim,
                                  jnp.float32) for _ in range(cfg.n_layers))
  tables = (jnp.arange(s)[:, None] * pages_per_row + jnp.arange(pages_per_row)[None]).astype(
      jnp.int32)
  return caches, tables


def test_hidden_transfer_in_verification_equals_extra_pass(tiny):
  model, params = tiny
  cfg = model.cfg
  layer, k, topk = 1, 3, 2
  ht = hidden_transfer.init_hidden_transfer(k, 32)
  ht = jax.tree.map(lambda v: v + 0.05 * jax.random.normal(jax.random.key(1), v.shape), ht)
  tree = TokenTree.from_paths([(0,), (1,), (0, 0), (0, 1), (1, 0), (0, 0, 0)])
  s = TOKENS.shape[0]
  caches, tables = _paged(model, s, 8)
  pre = model.apply({'params': params}, TOKENS, POS, PagedSpec(tables, jnp.zeros((s,), jnp.int32),
                                                                impl='reference'), caches)
  lengths = jnp.full((s,), 7, jnp.int32)
  cand = jnp.asarray(np.random.default_rng(0).integers(0, 64, (s, tree.num_nodes)), jnp.int32)
  make_spec = lambda m: PagedSpec(tables, lengths, m, impl='reference')  # noqa: E731
  logits, hidden, drafts, after = hidden_transfer.verify_with_transfer(
      model, params, ht, cand, lengths, tree, make_spec, pre.caches, layer, topk)
  assert logits.shape == (s, tree.num_nodes, 64) and drafts.shape == (s, tree.num_nodes, k, topk)
  # The tree rows are the plain verification forward.
  plain = model.apply({'params': params}, cand, tree.positions(lengths),
                      make_spec(tree.block_mask(s)), pre.caches, return_hidden=True)
  assert_close_across_orders(logits, plain.logits, terms=forward_terms(cfg, keys=8 * 8),
                             err_msg='tree rows')
  _, h_l = layer_runner.forward_with_layer_hidden(model, params, cand, tree.positions(lengths),
                                                  make_spec(tree.block_mask(s)), pre.caches, layer)
  for node in range(tree.num_nodes):  # commit the path to `node`, then run the extra pass from it
    path = [node]
    while tree.parent[path[-1]] >= 0:
      path.append(int(tree.parent[path[-1]]))
    path = path[::-1]
    nodes = jnp.asarray([path + [-1] * (tree.max_depth + 1 - len(path))] * s, jnp.int32)
    num = jnp.full((s,), len(path), jnp.int32)
    committed = tuple(compact_paged(c, tables, lengths, nodes, num) for c in after)
    new_len = lengths + len(path)
    ref_draft, _ = hidden_transfer.propose_extra_pass(
        params, cfg, ht, h_l[:, node], new_len, PagedSpec(tables, new_len, impl='reference'),
        committed, layer, topk)
    np.testing.assert_array_equal(drafts[:, node], ref_draft)


def slow_lookup(seq, k, max_n, min_n):
  for n in range(max_n, min_n - 1, -1):
    if len(seq) < n + 1:
      continue
    suffix = seq[-n:]
    for i in range(len(seq) - n - 1, -1, -1):
      if seq[i:i + n] == suffix:
        cont = seq[i + n:i + n + k]
        return cont + [-1] * (k - len(cont))
  return [-1] * k


@pytest.mark.parametrize('seed', range(3))
def test_prompt_lookup_matches_python(seed):
  rng = np.random.default_rng(seed)
  s, size, k = 16, 40, 4
  buf = rng.integers(0, 5, (s, size)).astype(np.int32)  # small alphabet: many matches
  lengths = rng.integers(1, size + 1, s).astype(np.int32)
  lengths[:3] = [1, 2, size]
  run = jax.jit(prompt_lookup.lookup, static_argnums=(2, 3, 4))
  for max_n, min_n in [(3, 1), (2, 2)]:
    got = np.asarray(run(jnp.asarray(buf), jnp.asarray(lengths), k, max_n, min_n))
    assert got.shape == (s, k, 1)
    for b in range(s):
      ref = slow_lookup(buf[b, :lengths[b]].tolist(), k, max_n, min_n)
      assert got[b, :, 0].tolist() == ref, (b, buf[b, :lengths[b]].tolist())


def test_prompt_lookup_prefers_longer_ngrams_and_latest_match():
  seq = [7, 1, 2, 9, 1, 2, 3, 4, 8, 2]  # suffix [.., 8, 2]: no 2-gram match; latest 1-gram '2' at 5
  got = prompt_lookup.lookup(jnp.asarray([seq]), jnp.asarray([len(seq)]), 3, 2, 1)
  assert np.asarray(got)[0, :, 0].tolist() == [3, 4, 8]
  seq2 = [1, 2, 5, 6, 9, 1, 2, 7, 0, 1, 2]  # 2-gram [1, 2] latest earlier match at 5 -> 7, 0, 1
  got2 = prompt_lookup.lookup(jnp.asarray([seq2]), jnp.asarray([len(seq2)]), 3, 2, 1)
  assert np.asarray(got2)[0, :, 0].tolist() == [7, 0, 1]
