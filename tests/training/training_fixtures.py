"""Shared test data: a small ShareGPT file with list, paragraph and plain answers; a tiny train config."""

import json
import os

from conftest import load_config

from apar_jax.defaults import train_defaults

LIST_ANSWER = ('Here are some tips:\n\n1. Sleep well: Go to bed at the same time every night.\n\n'
               '2. **Eat well**: Fruit and vegetables keep you healthy.\n\n3. Move: Walk at least '
               'thirty minutes a day.\n\nThese habits add up.')
PARAGRAPH_ANSWER = ('Paris is the capital of France. It is known for its museums and food.\n\n'
                    'The Eiffel Tower is a landmark. It was built in 1889 for the World Fair.\n\n'
                    'Paris has many parks. The Luxembourg Gardens are among the most famous.')
PLAIN_ANSWER = 'The answer is 42.'


def write_sharegpt(path: str, n: int = 12) -> str:
  answers = [LIST_ANSWER, PARAGRAPH_ANSWER, PLAIN_ANSWER]
  with open(path, 'w', encoding='utf-8') as f:
    for i in range(n):
      conv = [{'from': 'human', 'value': f'Question number {i}?'},
              {'from': 'gpt', 'value': answers[i % 3]}]
      f.write(json.dumps({'id': f'c{i}', 'conversations': conv}) + '\n')
  return path


def tiny_train_config(tmp: str, data_path: str, **train_overrides):
  config = load_config('tiny')
  config.train = train_defaults()
  config.train.update(data_path=data_path, seq_len=160, max_branches=8, batch_size=2,
                      total_steps=3, warmup_steps=1, save_every=1, learning_rate=1e-2,
                      checkpoint_dir=os.path.join(tmp, 'ckpt'), log_dir=os.path.join(tmp, 'logs'),
                      export_dir=os.path.join(tmp, 'adapter'))
  config.train.lora.rank = 4
  config.train.update(train_overrides)
  return config
