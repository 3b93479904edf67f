"""GGUF import checked against transformers on tiny models written as llama.cpp would write them."""

import gguf
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from apar_jax import weights
from apar_jax.testing.accumulation_depth import forward_terms
from apar_jax.testing.rounding import assert_close_across_orders
from apar_jax.model.rope import rope_inv_freq
from weights_testlib import (HEAD_DIM, LLAMA3_ROPE, hf_logits, llama_cpp_permute, make_hf_llama,
                             our_logits, write_llama_gguf)

pytestmark = pytest.mark.torch
Q = gguf.GGMLQuantizationType


@settings(max_examples=25, deadline=None)
@given(n_heads=st.integers(1, 4), half=st.integers(1, 4), cols=st.integers(0, 3))
def test_unpermute_inverts_llama_cpp_permute(n_heads, half, cols):
  shape = (n_heads * 2 * half,) + ((cols,) if cols else ())
  w = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
  np.testing.assert_array_equal(weights.unpermute_qk(llama_cpp_permute(w, n_heads), n_heads), w)


@pytest.mark.parametrize('tie', [True, False])
def test_f32_gguf_logits_match_transformers(tmp_path, tie):
  hf_model = make_hf_llama(str(tmp_path / 'hf'), tie=tie)
  path = write_llama_gguf(str(tmp_path / 'm.gguf'), hf_model)
  cfg = weights.model_config_from_gguf(path)
  assert cfg.tie_embeddings == tie and cfg.vocab_size == 96 and cfg.n_kv_heads == 2
  params = weights.load_gguf(path, cfg, progress=False)
  tokens = np.random.default_rng(0).integers(0, 96, (2, 40)).astype(np.int32)
  assert_close_across_orders(our_logits(cfg, params, tokens), hf_logits(hf_model, tokens),
                             terms=forward_terms(cfg, tokens.shape[1]), err_msg='logits')


def test_gguf_with_bias_and_llama3_rope_freqs(tmp_path):
  hf_model = make_hf_llama(str(tmp_path / 'hf'), bias=True, rope_scaling=LLAMA3_ROPE)
  base = rope_inv_freq(HEAD_DIM, 10000.0)
  scaled = rope_inv_freq(HEAD_DIM, 10000.0, 'llama3', 8.0, 1.0, 4.0, 64)
  path = write_llama_gguf(str(tmp_path / 'm.gguf'), hf_model, rope_freqs=base / scaled)
  cfg = weights.model_config_from_gguf(path)
  assert cfg.attention_bias and cfg.rope_scaling.kind == 'llama3'
  assert cfg.rope_scaling.original_max_position == 64 and cfg.rope_scaling.factor == 8.0
  params = weights.load_gguf(path, cfg, progress=False)
  tokens = np.random.default_rng(1).integers(0, 96, (1, 100)).astype(np.int32)
  assert_close_across_orders(our_logits(cfg, params, tokens), hf_logits(hf_model, tokens),
                             terms=forward_terms(cfg, tokens.shape[1]), err_msg='logits')


@pytest.mark.parametrize('qtype', [Q.Q8_0, Q.Q4_1, Q.F16])
def test_quantised_gguf_matches_transformers_on_dequantised_weights(tmp_path, qtype):
  hf_model = make_hf_llama(str(tmp_path / 'hf'))
  path = write_llama_gguf(str(tmp_path / 'm.gguf'), hf_model, qtype=qtype)
  cfg = weights.model_config_from_gguf(path)
  params = weights.load_gguf(path, cfg, progress=False)
  tokens = np.random.default_rng(2).integers(0, 96, (2, 24)).astype(np.int32)
  ours, before = our_logits(cfg, params, tokens), hf_logits(hf_model, tokens)
  # Reference: the same model with every matrix quantised and dequantised row-wise (rows are
  # quantised independently, so this commutes with llama.cpp's q/k row permutation).
  with torch.no_grad():
    for p in hf_model.parameters():
      if p.ndim == 2:
        w = p.numpy()
        p.copy_(torch.from_numpy(gguf.quants.dequantize(gguf.quants.quantize(w, qtype), qtype)))
  assert_close_across_orders(ours, hf_logits(hf_model, tokens),
                             terms=forward_terms(cfg, tokens.shape[1]), err_msg='dequantised')
  assert np.abs(ours - before).max() > 0  # quantisation did change something
  wq = hf_model.model.layers[0].self_attn.q_proj.weight.detach().numpy()  # [Hq*D, d], dequantised
  np.testing.assert_array_equal(np.asarray(params['layers_0']['attention']['q_proj']['kernel']),
                                wq.T.reshape(64, 4, HEAD_DIM))


def test_gguf_vocab_growth_keeps_base_logits(tmp_path):
  hf_model = make_hf_llama(str(tmp_path / 'hf'), tie=True)
  path = write_llama_gguf(str(tmp_path / 'm.gguf'), hf_model)
  cfg = weights.model_config_from_gguf(path)
  cfg.vocab_size = 98
  params = weights.load_gguf(path, cfg, progress=False)
  tokens = np.random.default_rng(3).integers(0, 96, (1, 16)).astype(np.int32)
  ours = our_logits(cfg, params, tokens)
  assert ours.shape[-1] == 98
  assert_close_across_orders(ours[..., :96], hf_logits(hf_model, tokens),
                             terms=forward_terms(cfg, tokens.shape[1]), err_msg='base vocabulary')
