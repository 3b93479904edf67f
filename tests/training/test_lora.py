"""LoRA: the merge equals W + scale * A @ B, token rows are replaced, save/load round-trips."""

import importlib.util
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.model import CausalSpec, build_model
from apar_jax.testing.accumulation_depth import backward_terms
from apar_jax.testing.rounding import assert_close_across_orders
from apar_jax.weights.adapter_io import adapter_bytes, load_adapter, save_adapter
from apar_jax.weights.lora import Adapter, LoraSpec, apply_adapter, init_adapter


def _tiny_model_config(vocab=64, tie=False):
  path = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'tiny.py')
  spec = importlib.util.spec_from_file_location('_tiny_cfg_lora', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  cfg = module.get_config()
  cfg.model.update(vocab_size=vocab, tie_embeddings=tie)
  return cfg.model


def _tiny_params(vocab=64, tie=False):
  model = build_model(_tiny_model_config(vocab, tie))
  x = jnp.zeros((1, 2), jnp.int32)
  return model, nn.unbox(model.init(jax.random.key(0), x, x, CausalSpec())['params'])


def _randomized(adapter, key):
  """The adapter with random (nonzero) B and rows, so the merge does something."""
  leaves, tree = jax.tree.flatten(adapter.weights)
  keys = jax.random.split(key, len(leaves))
  return Adapter(adapter.spec, jax.tree.unflatten(
      tree, [jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]))


def test_merge_is_w_plus_scaled_a_b():
  _, params = _tiny_params()
  spec = LoraSpec(rank=3, alpha=6.0, targets=('q_proj', 'o_proj', 'down_proj'), token_ids=(62, 63))
  fresh = init_adapter(params, spec, jax.random.key(1))
  same = apply_adapter(params, fresh)  # B = 0: nothing changes
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)), params, same)

  adapter = _randomized(fresh, jax.random.key(2))
  merged = apply_adapter(params, adapter)
  q = params['layers_1']['attention']['q_proj']['kernel']  # [d, H, D]
  ab = adapter.weights['lora']['layers_1']['attention']['q_proj']
  want = q + 2.0 * (np.asarray(ab['a']) @ np.asarray(ab['b'])).reshape(q.shape)
  np.testing.assert_allclose(merged['layers_1']['attention']['q_proj']['kernel'], want, rtol=1e-5,
                             atol=1e-6)
  o = params['layers_0']['attention']['o_proj']['kernel']  # [H, D, d]: two input axes
  ab = adapter.weights['lora']['layers_0']['attention']['o_proj']
  assert ab['a'].shape == (o.shape[0] * o.shape[1], 3) and ab['b'].shape == (3, o.shape[2])
  want = o + 2.0 * (np.asarray(ab['a']) @ np.asarray(ab['b'])).reshape(o.shape)
  np.testing.assert_allclose(merged['layers_0']['attention']['o_proj']['kernel'], want, rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_array_equal(merged['layers_0']['attention']['k_proj']['kernel'],
                                params['layers_0']['attention']['k_proj']['kernel'])
  emb = np.asarray(merged['embed']['embedding'])
  np.testing.assert_array_equal(emb[62:], adapter.weights['embed_rows'])
  np.testing.assert_array_equal(emb[:62], params['embed']['embedding'][:62])
  np.testing.assert_array_equal(np.asarray(merged['lm_head']['kernel'])[:, 62:],
                                adapter.weights['head_cols'])


def test_save_load_round_trip(tmp_path):
  _, params = _tiny_params(tie=True)
  spec = LoraSpec(rank=2, alpha=4.0, targets=('v_proj', 'up_proj'), token_ids=(62, 63))
  adapter = _randomized(init_adapter(params, spec, jax.random.key(1)), jax.random.key(3))
  assert 'head_cols' not in adapter.weights  # tied embeddings: the rows serve both ends
  path = save_adapter(str(tmp_path / 'adapter'), adapter)
  loaded = load_adapter(path)
  assert loaded.spec == spec
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
               adapter.weights, loaded.weights)
  assert 0 < adapter_bytes(path) < 1_000_000


def test_bad_adapters_are_refused(tmp_path):
  _, params = _tiny_params()
  with pytest.raises(ValueError, match='unknown LoRA target'):
    LoraSpec(rank=2, alpha=1.0, targets=('qkv',), token_ids=(1,))
  spec = LoraSpec(rank=2, alpha=1.0, targets=('q_proj',), token_ids=(62, 63))
  adapter = init_adapter(params, spec, jax.random.key(0))
  _, other = _tiny_params(vocab=32)
  with pytest.raises(ValueError, match='vocab_size'):
    apply_adapter(other, adapter)
  with pytest.raises(FileNotFoundError, match='train'):
    load_adapter(str(tmp_path / 'missing'))


def test_intercepted_side_paths_equal_the_merge():
  from apar_jax.weights.lora import merge_weights
  from apar_jax.training.lora_intercept import apply_with_lora, set_token_rows
  model, params = _tiny_params()
  spec = LoraSpec(rank=3, alpha=6.0, targets=('q_proj', 'o_proj', 'up_proj', 'down_proj'),
                  token_ids=(62, 63))
  weights = _randomized(init_adapter(params, spec, jax.random.key(1)), jax.random.key(2)).weights
  tokens = jnp.asarray([[1, 62, 5, 63, 9, 7]], jnp.int32)
  pos = jnp.arange(6)[None]
  # sum(logits ** 2) sums 6 x 64 values; each LoRA side path adds two rank-3 sums each way.
  terms = backward_terms(_tiny_model_config(), keys=6, loss_terms=6 * 64, grad_tokens=6) + 4 * 3

  def merged(w):
    return jnp.sum(model.apply({'params': merge_weights(params, w, spec)}, tokens, pos,
                               CausalSpec()).logits ** 2)

  def intercepted(w, side_spec=spec):
    return jnp.sum(apply_with_lora(model, set_token_rows(params, w, spec), w['lora'], side_spec,
                                   tokens, pos, CausalSpec()).logits ** 2)

  def check(loss_fn):
    assert_close_across_orders(loss_fn(weights), merged(weights), terms=terms, err_msg='loss')
    g1, g2 = jax.grad(merged)(weights), jax.grad(loss_fn)(weights)
    jax.tree_util.tree_map_with_path(lambda path, a, b: assert_close_across_orders(
        b, a, terms=terms, err_msg=jax.tree_util.keystr(path)), g1, g2)

  check(intercepted)
  # A side path scaled 1e-4 off (alpha / rank rounded somewhere) is a real error, and it shows.
  off = LoraSpec(rank=3, alpha=6.0 * (1 + 1e-4), targets=spec.targets, token_ids=spec.token_ids)
  with pytest.raises(AssertionError, match='differ by more than'):
    check(lambda w: intercepted(w, off))
