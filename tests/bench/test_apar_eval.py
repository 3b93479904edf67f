"""The APAR evaluation's parts: the held-out requests and answer NLL (its report: test_apar_eval_report)."""

import flax.linen as nn
import jax
import numpy as np

from apar_jax.apar_data.prompt_generator import generate_prompts
from apar_jax.bench.answer_nll import _bucket, answer_nll, answer_nlls
from apar_jax.bench.eval_requests import heldout_requests
from apar_jax.model import CausalSpec, build_model


def test_heldout_requests_are_the_split_the_distillation_never_reads(load_config):
  config = load_config('apar_smollm2_135m')
  held = heldout_requests(int(config.distill.prompt_seed), 20, 10)
  assert [r.kind for r in held] == ['list'] * 20 + ['plain'] * 10
  assert held == heldout_requests(int(config.distill.prompt_seed), 20, 10)
  trained = generate_prompts(int(config.distill.num_prompts), int(config.distill.prompt_seed),
                             split=config.distill.split)
  assert not {p.id for p in trained} & {p.id for p in held}
  assert not {p.text for p in trained} & {p.text for p in held}


def test_answer_nll_equals_a_sequence_by_sequence_reference(tiny_config):
  model = build_model(tiny_config.model)
  vocab = tiny_config.model.vocab_size
  rng = np.random.default_rng(0)
  prompts = [rng.integers(0, vocab, n).tolist() for n in (5, 9, 3, 4)]
  answers = [rng.integers(0, vocab, n).tolist() for n in (7, 2, 11, 2100)]  # 2100: a 3,072 bucket
  tokens = np.zeros((1, 4), np.int32)
  params = nn.unbox(model.init(jax.random.key(0), tokens, tokens, CausalSpec())['params'])
  total, count, each = 0.0, 0, []
  for p, a in zip(prompts, answers):  # the reference: one unpadded sequence at a time
    each.append(0.0)
    seq = np.array([p + a], np.int32)
    logits = model.apply({'params': params}, seq, np.arange(seq.shape[1])[None], CausalSpec()).logits
    x = np.asarray(logits[0], np.float64)  # [T, V]
    logp = x - x.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    for t in range(len(p), seq.shape[1]):
      total -= logp[t - 1, seq[0, t]]
      each[-1] -= logp[t - 1, seq[0, t]]
      count += 1
  got = answer_nll(model, params, prompts, answers, batch_size=2)
  np.testing.assert_allclose(got, total / count, rtol=1e-5)
  sums, counts = answer_nlls(model, params, prompts, answers, batch_size=2)
  assert counts.tolist() == [7, 2, 11, 2100]  # input order, though batched shortest first
  np.testing.assert_allclose(sums, each, rtol=1e-5)
  alone, _ = answer_nlls(model, params, prompts, answers, batch_size=4, max_tokens=64)  # 1 row each
  np.testing.assert_allclose(alone, each, rtol=1e-5)




def test_padded_lengths_double_to_1024_then_grow_by_1024():
  assert [_bucket(n) for n in (1, 64, 65, 1000, 1024, 1025, 2100, 5100)] == [
      64, 64, 128, 1024, 1024, 2048, 3072, 5120]
