"""Greedy speculative decoding is token-identical to greedy AR (DenseGenerator) on 50 prompts, for
every drafter; each decoder compiles its step once; bad inputs fail before compiling."""

import jax
import numpy as np
import pytest

from tiny import tiny_model

from apar_jax.generate import DenseGenerator
from apar_jax.speculative import hidden_transfer, medusa
from apar_jax.speculative.drafter import Drafter
from apar_jax.testing.speculative_reference import SpeculativeReferenceDecoder
from apar_jax.speculative.tree import TokenTree, TreeError

STOP = 63
MAX_NEW = 20
TREE = TokenTree.from_paths([(0,), (1,), (2,), (0, 0), (0, 1), (1, 0), (0, 0, 0)])


@pytest.fixture(scope='module')
def setup():
  model, params = tiny_model(vocab=64, n_layers=3, seed=0)
  rng = np.random.default_rng(0)
  prompts = [rng.integers(0, 63, rng.integers(3, 13)).tolist() for _ in range(50)]
  ar = DenseGenerator(model, params, stop_ids=(STOP,)).generate(prompts, MAX_NEW)['tokens']
  return model, params, prompts, ar


def _perturbed(tree, scale, seed):
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return treedef.unflatten([v + scale * jax.random.normal(k, v.shape) for v, k in zip(leaves, keys)])


CASES = {
    'oracle': lambda: (Drafter('oracle', 3, 3), None, TREE),
    'lookup': lambda: (Drafter('lookup', 4, 1, max_ngram=2), None, TokenTree.chain(4)),
    'medusa': lambda: (Drafter('medusa', 3, 3), _perturbed(medusa.init_medusa(3, 32), 0.02, 1),
                       TREE),
    'ht_verify': lambda: (Drafter('hidden_transfer', 3, 3, transfer_layer=1),
                          _perturbed(hidden_transfer.init_hidden_transfer(3, 32), 0.02, 2), TREE),
    'ht_extra_pass': lambda: (Drafter('hidden_transfer', 3, 3, transfer_layer=2,
                                      ht_variant='extra_pass'),
                              hidden_transfer.init_hidden_transfer(3, 32), TREE),
}


@pytest.mark.parametrize('case', list(CASES))
def test_greedy_speculative_equals_ar(setup, case):
  model, params, prompts, ar = setup
  drafter, dparams, tree = CASES[case]()
  dec = SpeculativeReferenceDecoder(model, params, drafter, dparams, tree, stop_ids=(STOP,))
  oracle = None
  if drafter.kind == 'oracle':
    oracle = np.zeros((len(prompts), MAX_NEW + 8), np.int32)
    for i, t in enumerate(ar):
      oracle[i, :len(t)] = t
  result = dec.generate(prompts, MAX_NEW, oracle=oracle)
  assert result['tokens'] == ar
  assert dec._step._cache_size() == 1  # one compilation of the step per decoder and capacity
  if drafter.kind == 'oracle':
    assert result['mean_accepted_tokens'] > 3.0
  else:
    assert result['mean_accepted_tokens'] >= 1.0


def test_rejection_at_temperature_zero_is_greedy(setup):
  model, params, prompts, ar = setup
  drafter, dparams, tree = CASES['oracle']()
  dec = SpeculativeReferenceDecoder(model, params, drafter, dparams, tree, stop_ids=(STOP,),
                                    acceptance='rejection')
  oracle = np.zeros((len(prompts), MAX_NEW + 8), np.int32)
  for i, t in enumerate(ar):
    oracle[i, :len(t)] = t
  assert dec.generate(prompts[:10], MAX_NEW, oracle=oracle[:10])['tokens'] == ar[:10]


def test_bad_inputs_fail_before_compiling(setup):
  model, params, _, _ = setup
  with pytest.raises(TreeError, match='3 levels deep'):
    SpeculativeReferenceDecoder(model, params, Drafter('medusa', 2, 3), medusa.init_medusa(2, 32),
                                TREE, stop_ids=(STOP,))
  with pytest.raises(TreeError, match='top-2'):
    SpeculativeReferenceDecoder(model, params, Drafter('medusa', 3, 2), medusa.init_medusa(3, 32),
                                TREE, stop_ids=(STOP,))
  with pytest.raises(ValueError, match='Medusa params hold 2 heads'):
    SpeculativeReferenceDecoder(model, params, Drafter('medusa', 3, 3), medusa.init_medusa(2, 32),
                                TREE, stop_ids=(STOP,))
  with pytest.raises(ValueError, match='expected \\(3, 32, 32\\)'):
    SpeculativeReferenceDecoder(model, params, Drafter('hidden_transfer', 3, 3),
                                hidden_transfer.init_hidden_transfer(3, 16), TREE, stop_ids=(STOP,))
  with pytest.raises(ValueError, match='transfer_layer 9'):
    SpeculativeReferenceDecoder(model, params, Drafter('hidden_transfer', 3, 3, transfer_layer=9),
                                hidden_transfer.init_hidden_transfer(3, 32), TREE, stop_ids=(STOP,))
  with pytest.raises(ValueError, match='topk must be 1'):
    Drafter('lookup', 4, 2)
