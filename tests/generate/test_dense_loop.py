"""The dense-cache loop against a slow full-recompute greedy, sampling determinism and bad input."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from apar_jax.generate import DenseGenerator, SamplingParams
from apar_jax.model import CausalSpec, build_model

VOCAB, STOP, BANNED = 61, 3, (59, 60)


@pytest.fixture(scope='module')
def tiny_model():
  import importlib.util, os  # noqa: E401
  path = os.path.join(os.path.dirname(__file__), '..', '..', 'configs', 'tiny.py')
  spec = importlib.util.spec_from_file_location('_tiny_cfg', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  cfg = module.get_config()
  cfg.model.vocab_size = VOCAB
  model = build_model(cfg.model)
  x = jnp.zeros((1, 2), jnp.int32)
  params = nn.unbox(model.init(jax.random.key(3), x, x, CausalSpec())['params'])
  return model, params


def slow_greedy(model, params, prompt, max_new):
  """No cache: the whole sequence is recomputed for every new token."""
  seq, out = list(prompt), []
  for _ in range(max_new):
    logits = model.apply({'params': params}, jnp.asarray([seq]), jnp.arange(len(seq))[None],
                         CausalSpec()).logits[0, -1]
    logits = np.asarray(logits).copy()
    logits[list(BANNED)] = -np.inf
    tok = int(np.argmax(logits))
    out.append(tok)
    seq.append(tok)
    if tok == STOP:
      break
  return out


def test_greedy_matches_full_recompute_for_a_ragged_batch(tiny_model):
  model, params = tiny_model
  prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
  gen = DenseGenerator(model, params, stop_ids=(STOP,), banned_ids=BANNED, chunk_steps=5)
  result = gen.generate(prompts, 17)
  for prompt, got in zip(prompts, result['tokens']):
    assert got == slow_greedy(model, params, prompt, 17)
  assert result['decode_steps'] == max(len(t) for t in result['tokens'])


def test_streaming_callback_sees_every_token_once(tiny_model):
  model, params = tiny_model
  gen = DenseGenerator(model, params, stop_ids=(STOP,), banned_ids=BANNED, chunk_steps=3)
  seen: dict[int, list[int]] = {0: [], 1: []}
  result = gen.generate([[5, 6], [7, 8, 9]], 10, on_tokens=lambda i, t: seen[i].extend(t))
  assert [seen[0], seen[1]] == result['tokens']


def test_sampling_same_seed_same_output(tiny_model):
  model, params = tiny_model
  gen = DenseGenerator(model, params, stop_ids=(STOP,), banned_ids=BANNED)
  s = SamplingParams(temperature=1.0, top_k=20, top_p=0.9, seed=11)
  a = gen.generate([[5, 6, 7]], 12, s)['tokens']
  b = gen.generate([[5, 6, 7]], 12, s)['tokens']
  c = gen.generate([[5, 6, 7]], 12, SamplingParams(temperature=1.0, seed=12))['tokens']
  assert a == b
  assert a != c
  assert not set(BANNED) & set(a[0])


@pytest.mark.parametrize('prompts,max_new,match', [
    ([[]], 4, 'at least one token'),
    ([[1, 2]], 0, 'max_new_tokens'),
    ([[1, VOCAB]], 4, 'token ids'),
    ([[1] * 2040], 16, 'max_position'),
])
def test_bad_input_is_rejected_before_compiling(tiny_model, prompts, max_new, match):
  model, params = tiny_model
  gen = DenseGenerator(model, params, stop_ids=(STOP,))
  with pytest.raises(ValueError, match=match):
    gen.generate(prompts, max_new)
