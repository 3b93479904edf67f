"""The default model: SmolLM2-135M-Instruct (Q4_1 GGUF) against transformers loading the same file.

Both sides dequantise the same Q8_0/Q4_1 blocks to fp32, so the logits agree to float rounding
(measured here: max |diff| about 1.2e-4 on logits up to ~40).
"""

import os

import numpy as np
import pytest

from apar_jax import weights
from weights_testlib import load_repo_config, our_logits

pytestmark = [pytest.mark.smollm2, pytest.mark.torch, pytest.mark.slow]
BASE_VOCAB = 49152
ATOL = 1e-3


@pytest.fixture(scope='module')
def smollm2():
  try:
    path = weights.default_gguf_path()
  except weights.DefaultModelMissingError as e:
    pytest.skip(str(e))
  import torch
  import transformers
  directory, name = os.path.split(path)
  tokenizer = transformers.AutoTokenizer.from_pretrained(directory, gguf_file=name)
  ids = tokenizer.apply_chat_template(
      [{'role': 'user', 'content': 'Give me three tips for learning to cook.'}],
      add_generation_prompt=True, return_dict=False)
  tokens = np.asarray([ids], np.int32)  # [1, T]
  hf_model = transformers.AutoModelForCausalLM.from_pretrained(directory, gguf_file=name,
                                                               dtype=torch.float32)
  with torch.no_grad():
    ref = hf_model(torch.as_tensor(tokens, dtype=torch.long)).logits.numpy()  # [1, T, 49152]
  del hf_model
  config = load_repo_config('smollm2_135m')  # vocab 49152 + [Fork], [Child]; source 'default'
  params = weights.load_params(config, progress=False)
  return dict(config=config, params=params, tokens=tokens, ref=ref, path=path)


def test_logits_close_and_same_argmax(smollm2):
  ours = our_logits(smollm2['config'].model, smollm2['params'], smollm2['tokens'])
  assert ours.shape == smollm2['ref'].shape[:-1] + (BASE_VOCAB + 2,)
  base, ref = ours[..., :BASE_VOCAB], smollm2['ref']
  diff = float(np.abs(base - ref).max())
  print(f'SmolLM2 GGUF: max |logit diff| = {diff:.2e} (max |logit| {np.abs(ref).max():.1f})')
  assert diff < ATOL
  np.testing.assert_array_equal(base.argmax(-1), ref.argmax(-1))


def test_control_token_rows_are_the_mean_embedding(smollm2):
  emb = np.asarray(smollm2['params']['embed']['embedding'])  # [49154, 576]
  assert emb.shape == (BASE_VOCAB + 2, 576) and 'lm_head' not in smollm2['params']
  mean = emb[:BASE_VOCAB].astype(np.float64).mean(0)
  np.testing.assert_allclose(emb[BASE_VOCAB:], np.stack([mean, mean]), rtol=1e-5, atol=1e-6)


def test_gguf_config_matches_repo_config(smollm2):
  from_file = weights.model_config_from_gguf(smollm2['path'])
  repo = smollm2['config'].model
  for field in ('d_model', 'n_layers', 'n_heads', 'n_kv_heads', 'head_dim', 'ffn_dim',
                'tie_embeddings', 'attention_bias', 'max_position'):
    assert from_file[field] == repo[field], field
  assert from_file.vocab_size == BASE_VOCAB and repo.vocab_size == BASE_VOCAB + 2
  assert from_file.rope_theta == repo.rope_theta and from_file.rope_scaling.kind == 'none'
  assert abs(from_file.norm_eps - repo.norm_eps) < 1e-9
  assert weights.checkpoint_model_config('default').to_dict() == from_file.to_dict()
