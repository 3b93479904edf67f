"""The trainer on a tiny model: resume after a stop == uninterrupted run; logs; exported adapter."""

import glob
import os
import struct

import jax
import numpy as np
import pytest

from training_fixtures import tiny_train_config, write_sharegpt

from apar_jax.weights.adapter_io import load_adapter
from apar_jax.training.plot import plot_loss, read_metrics
from apar_jax.training.trainer import train


def read_scalars(path):
  """(step, tag, value) of every scalar in a TensorBoard event file (TFRecord framing: length,
  its CRC, an `Event` proto, its CRC; CRCs not checked here)."""
  from tensorboardX.proto.event_pb2 import Event
  out = []
  with open(path, 'rb') as f:
    while header := f.read(12):
      (n,) = struct.unpack('<Q', header[:8])
      event = Event.FromString(f.read(n))
      f.read(4)
      out += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
  return out


@pytest.fixture(scope='module')
def tokenizer(load_config):
  from apar_jax.runtime import load_tokenizer_from_config
  return load_tokenizer_from_config(load_config('tiny'))


def _assert_same_tree(a, b):
  jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


def test_resume_after_a_stop_matches_an_uninterrupted_run(tmp_path, tokenizer):
  data = write_sharegpt(str(tmp_path / 'data.jsonl'))
  straight = train(tiny_train_config(str(tmp_path / 'a'), data), tokenizer=tokenizer,
                   progress=False)
  assert straight.start_step == 0 and straight.end_step == 3

  cfg = tiny_train_config(str(tmp_path / 'b'), data)
  first = train(cfg, tokenizer=tokenizer, stop_after=2, progress=False)
  assert first.end_step == 2 and first.exported is None
  resumed = train(cfg, tokenizer=tokenizer, progress=False)
  assert resumed.start_step == 2 and resumed.end_step == 3
  _assert_same_tree(straight.state, resumed.state)

  # Logs: TensorBoard scalars and metrics.jsonl for every step, across the stop.
  events = glob.glob(str(tmp_path / 'b' / 'logs' / 'events.out.tfevents.*'))
  assert len(events) == 2
  losses = {step: v for path in events for step, tag, v in read_scalars(path) if tag == 'loss'}
  assert sorted(losses) == [1, 2, 3]
  assert [r['step'] for r in read_metrics(str(tmp_path / 'b' / 'logs'))] == [1, 2, 3]
  png = plot_loss(str(tmp_path / 'b' / 'logs'), str(tmp_path / 'loss.png'))
  assert os.path.getsize(png) > 1000

  # The exported adapter holds the trained weights and the control-token rows.
  adapter = load_adapter(resumed.exported)
  assert adapter.spec.token_ids == (tokenizer.fork_id, tokenizer.child_id)
  _assert_same_tree(adapter.weights, resumed.state['trainable'])


def test_full_fine_tuning_and_branch_rows_layout(tmp_path, tokenizer):
  data = write_sharegpt(str(tmp_path / 'data.jsonl'))
  cfg = tiny_train_config(str(tmp_path / 'full'), data, method='full', layout='branch_rows',
                          total_steps=2, grad_accum=2, export_dir='')
  result = train(cfg, tokenizer=tokenizer, progress=False)
  assert result.end_step == 2 and 'embed' in result.state['trainable']
  losses = [r['loss'] for r in read_metrics(cfg.train.log_dir)]
  assert all(np.isfinite(losses))


def test_bad_settings_are_refused(tmp_path, tokenizer):
  data = write_sharegpt(str(tmp_path / 'data.jsonl'))
  with pytest.raises(ValueError, match='grad_accum'):
    train(tiny_train_config(str(tmp_path / 'x'), data, grad_accum=3), tokenizer=tokenizer,
          progress=False)
  with pytest.raises(ValueError, match='method'):
    train(tiny_train_config(str(tmp_path / 'y'), data, method='qlora'), tokenizer=tokenizer,
          progress=False)
  with pytest.raises(ValueError, match="root_loss_weight=3.0 needs train.layout='packed'"):
    train(tiny_train_config(str(tmp_path / 'w'), data, layout='branch_rows', root_loss_weight=3.0),
          tokenizer=tokenizer, progress=False)
  with pytest.raises(ValueError, match="candidates='titles': choose one of all, words"):
    train(tiny_train_config(str(tmp_path / 'v'), data, unlikelihood_candidates='titles'),
          tokenizer=tokenizer, progress=False)
  with pytest.raises(ValueError, match='list_end_weight must be >= 0, got -1'):
    train(tiny_train_config(str(tmp_path / 'u'), data, list_end_weight=-1.0), tokenizer=tokenizer,
          progress=False)
  with pytest.raises(FileNotFoundError, match='does not exist'):
    train(tiny_train_config(str(tmp_path / 'z'), str(tmp_path / 'missing.jsonl')),
          tokenizer=tokenizer, progress=False)


def test_root_and_list_end_weights_and_unlikelihood_reach_the_first_step_loss(tmp_path, tokenizer):
  """Same parameters at step 0: weighting the roots changes the mean, unlikelihood adds to it
  (a little: near-uniform tiny-model probabilities make -log(1 - p) small)."""
  data = write_sharegpt(str(tmp_path / 'data.jsonl'))

  def first_loss(name, **overrides):
    cfg = tiny_train_config(str(tmp_path / name), data, export_dir='', **overrides)
    train(cfg, tokenizer=tokenizer, stop_after=1, progress=False)
    return read_metrics(cfg.train.log_dir)[0]

  plain, heavy = first_loss('plain'), first_loss('ul', root_unlikelihood_weight=1.0)
  assert heavy['targets'] == plain['targets'] and heavy['loss'] > plain['loss']
  words = first_loss('words', root_unlikelihood_weight=1.0, unlikelihood_candidates='words')
  assert plain['loss'] < words['loss'] < heavy['loss']  # fewer candidates, a smaller term
  rooted = first_loss('rooted', root_loss_weight=3.0)
  assert rooted['targets'] > plain['targets'] and rooted['loss'] != plain['loss']
  ended = first_loss('ended', list_end_weight=5.0)  # 2 targets per tree, 4 more times each
  assert plain['targets'] < ended['targets'] < rooted['targets'] and ended['loss'] != plain['loss']
