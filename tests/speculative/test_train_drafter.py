"""Drafter training on a frozen tiny model: the loss falls, checkpoints resume, and the command runs
end to end (distil -> features -> train -> measure -> save with fingerprint)."""

import dataclasses
import json

import numpy as np
import pytest

from tiny import tiny_model

from apar_jax.defaults import drafter_train_config
from apar_jax.generate import DenseGenerator
from apar_jax.training.drafter.data import base_features, make_rows
from apar_jax.training.drafter.trainer import (TrainSettings, make_features,
                                                measure_acceptance, train)


@pytest.fixture(scope='module')
def data():
  model, params = tiny_model(vocab=64, n_layers=3, seed=0)
  rng = np.random.default_rng(0)
  prompts = [rng.integers(0, 63, 6).tolist() for _ in range(12)]
  answers = DenseGenerator(model, params, stop_ids=(63,)).generate(prompts, 24)['tokens']
  rows = make_rows(list(zip(prompts, answers)), 32)
  final, inner = base_features(model, params, rows, transfer_layer=1, progress=False)
  return model, params, make_features(rows, final, inner, 2)


@pytest.mark.parametrize('kind,steps', [('medusa', 40), ('hidden_transfer', 25)])
def test_loss_falls_and_acceptance_is_measured(data, kind, steps):
  model, params, feats = data
  s = TrainSettings(kind=kind, num_heads=2, transfer_layer=1, steps=steps, batch=64,
                    rows_per_step=2, anchors_per_row=8, learning_rate=1e-2, warmup_steps=2,
                    topk_eval=3)
  dparams, log = train(model, params, feats, s, progress=False)
  assert np.mean(log['loss'][-5:]) < np.mean(log['loss'][:5])
  acc = measure_acceptance(model, params, dparams, feats, s, anchors_per_row=8)
  assert acc.shape == (2, 3) and (acc >= 0).all() and (acc.sum(1) <= 1 + 1e-9).all()


def test_training_resumes_from_checkpoint(data, tmp_path, capsys):
  model, params, feats = data
  s = TrainSettings(kind='medusa', num_heads=2, steps=4, batch=16, save_every=2)
  train(model, params, feats, s, checkpoint_dir=str(tmp_path), progress=False)
  _, log = train(model, params, feats, dataclasses.replace(s, steps=6),
                 checkpoint_dir=str(tmp_path), progress=False)
  assert len(log['loss']) == 2
  assert 'resumed from step 4' in capsys.readouterr().err


def test_command_end_to_end(tmp_path, capsys, load_config):
  from apar_jax.commands import train_drafter
  from apar_jax.speculative.drafter_io import drafter_metadata
  config = load_config('tiny')
  config.drafter = drafter_train_config(
      kind='medusa', num_heads=2, data_path=str(tmp_path / 'data.jsonl'), generate_answers=4,
      distill_max_new_tokens=12, distill_batch=4, seq_len=48, eval_fraction=0.25, steps=3,
      batch=16, save_every=3, work_dir=str(tmp_path / 'work'), output=str(tmp_path / 'out'))
  train_drafter.run(config)
  printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert printed['kind'] == 'medusa' and len(printed['acceptance']) == 2
  meta = drafter_metadata(str(tmp_path / 'out'))
  assert meta['base']['shape']['n_layers'] == 2 and meta['train']['train_examples'] == 3
  with pytest.raises(ValueError, match='overwrite'):
    train_drafter.run(config)


class _CharTokenizer:
  """Just enough of the tokenizer interface for encode_chat: one id per character."""
  eos_id = 2
  add_bos_default = False

  def token_to_id(self, token):
    return 1

  def id_to_token(self, i):
    return '</s>'

  def encode(self, text, add_bos=False):
    return [3 + ord(c) % 50 for c in text]


def test_read_examples_with_ids_or_text(tmp_path):
  from apar_jax.training.drafter.data import read_examples
  path = tmp_path / 'd.jsonl'
  path.write_text(
      '{"id": "a", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": '
      '"yo"}], "prompt_ids": [5, 6], "answer_ids": [7, 2]}\n'
      '{"id": "b", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": '
      '"yo"}]}\n'
      '{"id": "c", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": '
      '"yo"}], "finished": false}\n'
      '{"id": "d", "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": '
      '"yo yo"}], "kept": false, "drop_reason": "4gram_loop"}\n')
  tok = _CharTokenizer()
  examples = read_examples(str(path), tok, 'vicuna_v1.1')
  assert examples[0] == ([5, 6], [7, 2])
  assert examples[1][1] == tok.encode('yo') + [2]  # a finished answer ends with EOS
  assert examples[2][1] == tok.encode('yo')  # a cut one does not
  assert examples[3][1] == tok.encode('yo yo') + [2]  # one the APAR filters dropped still counts
  with pytest.raises(FileNotFoundError, match='generate_answers'):
    read_examples(str(tmp_path / 'missing.jsonl'))


def test_read_examples_where_keeps_the_records_with_those_settings(tmp_path, capsys):
  from apar_jax.training.drafter.data import read_examples
  path = tmp_path / 'd.jsonl'
  rows = [('greedy', {'temperature': 0.0, 'kind': 'plain'}),
          ('sampled', {'temperature': 0.7, 'kind': 'plain'}),
          ('no_field', {'kind': 'plain'}),
          ('greedy_list', {'temperature': 0, 'kind': 'list'})]
  path.write_text(''.join(json.dumps(
      {'id': name, 'conversations': [{'from': 'human', 'value': 'hi'},
                                     {'from': 'gpt', 'value': name}], **settings}) + '\n'
      for name, settings in rows))
  tok = _CharTokenizer()
  answers = [a for _, a in read_examples(str(path), tok, 'vicuna_v1.1', where='temperature=0')]
  assert answers == [tok.encode('greedy') + [2], tok.encode('greedy_list') + [2]]
  assert '2 records kept, 2 left out' in capsys.readouterr().err
  answers = [a for _, a in read_examples(str(path), tok, 'vicuna_v1.1',
                                         where='temperature=0,kind=plain')]
  assert answers == [tok.encode('greedy') + [2]]
  assert len(read_examples(str(path), tok, 'vicuna_v1.1')) == 4  # no condition: every record
  with pytest.raises(ValueError, match='left out by drafter.data_where'):
    read_examples(str(path), tok, 'vicuna_v1.1', where='temperature=1')
  with pytest.raises(ValueError, match='drafter.data_where: .* is not field=value'):
    read_examples(str(path), tok, 'vicuna_v1.1', where='temperature')
