"""The APAR evaluation's parts: held-out request selection, answer NLL, and the summary."""

import flax.linen as nn
import jax
import numpy as np

from apar_jax.apar_data.prompt_generator import generate_prompts
from apar_jax.benchmarks.answer_nll import answer_nll
from apar_jax.benchmarks.apar_eval_report import report, summarise
from apar_jax.benchmarks.heldout_answers import (HeldoutAnswer, answer_tree_kind, heldout_prompts,
                                                 read_cache, select)
from apar_jax.model import CausalSpec, build_model


def test_heldout_requests_are_the_split_the_distillation_never_reads(load_config):
  config = load_config('apar_smollm2_135m')
  held = heldout_prompts(config, 30)
  trained = generate_prompts(int(config.distill.num_prompts), int(config.distill.prompt_seed),
                             split=config.distill.split)
  assert len(held) == 30 and {p.split for p in held} == {'heldout'}
  assert not {p.id for p in trained} & {p.id for p in held}
  assert not {p.text for p in trained} & {p.text for p in held}


def test_answer_nll_equals_a_sequence_by_sequence_reference(tiny_config):
  model = build_model(tiny_config.model)
  vocab = tiny_config.model.vocab_size
  rng = np.random.default_rng(0)
  prompts = [rng.integers(0, vocab, n).tolist() for n in (5, 9, 3)]
  answers = [rng.integers(0, vocab, n).tolist() for n in (7, 2, 11)]
  tokens = np.zeros((1, 4), np.int32)
  params = nn.unbox(model.init(jax.random.key(0), tokens, tokens, CausalSpec())['params'])
  total, count = 0.0, 0
  for p, a in zip(prompts, answers):  # the reference: one unpadded sequence at a time
    seq = np.array([p + a], np.int32)
    logits = model.apply({'params': params}, seq, np.arange(seq.shape[1])[None], CausalSpec()).logits
    x = np.asarray(logits[0], np.float64)  # [T, V]
    logp = x - x.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    for t in range(len(p), seq.shape[1]):
      total -= logp[t - 1, seq[0, t]]
      count += 1
  got = answer_nll(model, params, prompts, answers, batch_size=2)
  np.testing.assert_allclose(got, total / count, rtol=1e-5)


def _answer(i, kind, tree_kind, finished=True):
  return HeldoutAnswer(f'id{i}', kind, 'q', (1, 2), (3, 4), 'text', finished, tree_kind)


def test_selection_keeps_list_answers_and_finished_plain_answers(tmp_path):
  answers = [_answer(0, 'list', 'list'), _answer(1, 'list', ''), _answer(2, 'plain', ''),
             _answer(3, 'plain', '', finished=False), _answer(4, 'plain', 'paragraphs'),
             _answer(5, 'list', 'list'), _answer(6, 'list', 'paragraphs')]
  lists, plain = select(answers, 5, 5)
  assert [a.id for a in lists] == ['id0', 'id5'] and [a.id for a in plain] == ['id2']
  assert [a.id for a in select(answers, 1, 0)[0]] == ['id0']
  path = tmp_path / 'cache.jsonl'
  import dataclasses
  import json
  path.write_text(''.join(json.dumps(dataclasses.asdict(a)) + '\n' for a in answers) + '{"id": "cut')
  assert list(read_cache(str(path)).values()) == answers  # a torn last line is skipped


def test_tree_kind_of_finished_and_cut_answers():
  items = ''.join(f'{i}. Item {i}: a detail that is long enough.\n' for i in range(1, 8))
  assert answer_tree_kind('Here are ideas:\n\n' + items, True) == 'list'
  assert answer_tree_kind('Just one sentence of an answer.', True) == ''
  assert answer_tree_kind('Here are ideas:\n\n' + items + '\n\n' + 'x' * 150, False) == 'list'


def test_summary_ratios_and_report():
  records = [dict(decode_steps=40, num_generated_tokens=100, forks=4, refused_forks=0),
             dict(decode_steps=60, num_generated_tokens=60, forks=0, refused_forks=1)]
  s = summarise(records, base_nll=2.0, apar_nll=2.05)
  assert s['fork_rate'] == 0.5 and s['step_ratio'] == 100 / 160
  assert s['median_request_step_ratio'] == 0.7 and s['loss_ratio'] == 1.025
  table = report(s)
  assert '| requests forking | 50% of 2' in table and table.count('NOT met') == 2
