"""Logit parity with transformers (fp32) for tiny LLaMA checkpoints loaded from safetensors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax import weights
from apar_jax.testing.accumulation_depth import forward_terms
from apar_jax.testing.rounding import assert_close_across_orders
from weights_testlib import LLAMA3_ROPE, hf_logits, make_hf_llama, our_logits

pytestmark = pytest.mark.torch
CASES = {
    'gqa_untied': dict(n_kv_heads=2, tie=False),
    'mha_tied': dict(n_kv_heads=4, tie=True),
    'attention_bias': dict(bias=True),
    'llama3_rope': dict(rope_scaling=LLAMA3_ROPE),
    'sharded_index': dict(max_shard_size='40KB', tie=True, n_kv_heads=1),
}


def _tokens(vocab: int, seed: int = 0) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, vocab, (2, 40)).astype(np.int32)  # [B, T]


@pytest.mark.parametrize('case', sorted(CASES))
def test_logits_match_transformers(tmp_path, case):
  hf_model = make_hf_llama(str(tmp_path), **CASES[case])
  if case == 'sharded_index':
    assert (tmp_path / 'model.safetensors.index.json').exists()
    assert len(list(tmp_path.glob('*.safetensors'))) > 1
  cfg = weights.model_config_from_hf(str(tmp_path))
  params = weights.load_hf_checkpoint(str(tmp_path), cfg, progress=False)
  tokens = _tokens(cfg.vocab_size)
  ours, ref = our_logits(cfg, params, tokens), hf_logits(hf_model, tokens)
  assert ours.shape == ref.shape
  assert np.abs(ref).max() > 0.5  # logits are not trivially small
  assert_close_across_orders(ours, ref, terms=forward_terms(cfg, tokens.shape[1]), err_msg=case)


@pytest.mark.parametrize('tie', [False, True])
def test_grown_vocab_keeps_base_logits(tmp_path, tie):
  hf_model = make_hf_llama(str(tmp_path), tie=tie)
  cfg = weights.model_config_from_hf(str(tmp_path))
  base_vocab = cfg.vocab_size
  cfg.vocab_size = base_vocab + 2  # [Fork], [Child]
  params = weights.load_hf_checkpoint(str(tmp_path), cfg, progress=False)
  emb = np.asarray(params['embed']['embedding'])
  assert emb.shape == (base_vocab + 2, cfg.d_model)
  np.testing.assert_allclose(emb[base_vocab:], np.broadcast_to(emb[:base_vocab].mean(0), (2, 64)),
                             rtol=1e-6, atol=1e-7)
  if not tie:
    head = np.asarray(params['lm_head']['kernel'])
    assert head.shape == (cfg.d_model, base_vocab + 2)
    mean_col = head[:, :base_vocab].mean(1, keepdims=True)  # [d, 1]
    np.testing.assert_allclose(head[:, base_vocab:], np.repeat(mean_col, 2, 1), rtol=1e-6, atol=1e-7)
  tokens = _tokens(base_vocab, seed=1)
  ours, ref = our_logits(cfg, params, tokens), hf_logits(hf_model, tokens)
  assert_close_across_orders(ours[..., :base_vocab], ref,
                             terms=forward_terms(cfg, tokens.shape[1]), err_msg='base vocabulary')


def test_bf16_load_casts_every_leaf(tmp_path):
  make_hf_llama(str(tmp_path))
  cfg = weights.model_config_from_hf(str(tmp_path))
  params = weights.load_hf_checkpoint(str(tmp_path), cfg, dtype=jnp.bfloat16, progress=False)
  dtypes = {leaf.dtype for leaf in jax.tree.leaves(params)}
  assert dtypes == {jnp.dtype(jnp.bfloat16)}


def test_param_tree_matches_model_init(tmp_path):
  make_hf_llama(str(tmp_path), bias=True)
  cfg = weights.model_config_from_hf(str(tmp_path))
  params = weights.load_hf_checkpoint(str(tmp_path), cfg, progress=False)
  abstract = weights.abstract_params(cfg)
  assert jax.tree.structure(params) == jax.tree.structure(abstract)
  for got, want in zip(jax.tree.leaves(params), jax.tree.leaves(abstract)):
    assert got.shape == want.shape and got.dtype == want.dtype
