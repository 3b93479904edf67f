"""`python -m apar_jax train_drafter --config=configs/drafter_medusa.py`: train a Medusa or Hidden
Transfer drafter on the frozen base model with self-distilled data, measure its acceptance before and
after, and write the drafter checkpoint (with the base model's fingerprint and the measured
acceptance table, which the automatic tree builder reads).

Steps: (1) distil `drafter.generate_answers` greedy answers into `drafter.data_path` if that file is
missing (resumable), (2) compute the base features of every row once, (3) train with checkpoints in
`drafter.work_dir` (resumable), (4) measure per-position top-k acceptance on held-out rows,
(5) save to `drafter.output`.
"""

import dataclasses
import json
import os
import sys
import time

import ml_collections
import numpy as np

from apar_jax.speculative.drafter_io import save_drafter
from apar_jax.training.drafter.data import base_features, make_rows, read_examples
from apar_jax.training.drafter.trainer import (TrainSettings, init_drafter, make_features,
                                                measure_acceptance, train)


def settings_from_config(dcfg: ml_collections.ConfigDict) -> TrainSettings:
  fields = TrainSettings.__dataclass_fields__
  return TrainSettings(**{k: dcfg[k] for k in fields if k in dcfg})


def default_output(config: ml_collections.ConfigDict) -> str:
  return os.path.join('checkpoints', 'drafters', f'{config.name}')


def _distil_if_missing(runtime, dcfg: ml_collections.ConfigDict) -> None:
  path = dcfg.data_path
  have = sum(1 for line in open(path, encoding='utf-8') if line.strip()) if os.path.exists(path) else 0
  if dcfg.generate_answers <= 0 or have >= dcfg.generate_answers:
    return
  from apar_jax.training.drafter.prompt_bank import prompt_bank
  from apar_jax.training.drafter.self_distill import distill
  print(f'[train_drafter] distilling {dcfg.generate_answers - have} answers into {path}',
        file=sys.stderr)
  cfg = runtime.config
  distill(runtime.model, runtime.params, runtime.tokenizer, prompt_bank(dcfg.generate_answers,
                                                                        seed=int(cfg.seed)),
          path, tokenizer_config=cfg.tokenizer, max_new_tokens=dcfg.distill_max_new_tokens,
          batch_size=dcfg.distill_batch)


def run(config: ml_collections.ConfigDict) -> None:
  if 'drafter' not in config:
    raise ValueError('the config has no `drafter` section: use configs/drafter_medusa.py or '
                     'configs/drafter_hidden_transfer.py (or add '
                     'apar_jax.defaults.drafter_train_config())')
  dcfg = config.drafter
  s = settings_from_config(dcfg)
  init_drafter(s, 8)  # validates the kind before anything is loaded
  if s.kind == 'hidden_transfer' and not 0 <= s.transfer_layer <= config.model.n_layers:
    raise ValueError(f'drafter.transfer_layer={s.transfer_layer} is outside [0, '
                     f'{config.model.n_layers}]')
  output = dcfg.output or default_output(config)
  if os.path.exists(output) and not dcfg.overwrite:
    raise ValueError(f'{output} already exists: pass --config.drafter.overwrite=True or another '
                     '--config.drafter.output')
  from apar_jax.runtime import load_runtime
  runtime = load_runtime(config)
  _distil_if_missing(runtime, dcfg)
  data_where = str(dcfg.get('data_where', ''))
  examples = read_examples(dcfg.data_path, runtime.tokenizer, config.tokenizer.chat_template,
                           where=data_where)
  n_eval = max(1, int(round(len(examples) * dcfg.eval_fraction)))
  if len(examples) - n_eval < 1:
    raise ValueError(f'{dcfg.data_path} has {len(examples)} examples: too few to hold out '
                     f'{n_eval} for evaluation')
  layer = s.transfer_layer if s.kind == 'hidden_transfer' else None
  feats = []
  for part in (examples[:-n_eval], examples[-n_eval:]):
    rows = make_rows(part, dcfg.seq_len, dcfg.max_prompt)
    final, inner = base_features(runtime.model, runtime.params, rows, layer)
    feats.append(make_features(rows, final, inner, s.num_heads))
  train_f, eval_f = feats
  t0 = time.perf_counter()
  before = measure_acceptance(runtime.model, runtime.params, init_drafter(s, config.model.d_model),
                              eval_f, s)
  print(f'[train_drafter] untrained acceptance (rows: future position, cols: rank):\n{before}',
        file=sys.stderr)
  dparams, log = train(runtime.model, runtime.params, train_f, s,
                       checkpoint_dir=os.path.join(dcfg.work_dir, config.name))
  after = measure_acceptance(runtime.model, runtime.params, dparams, eval_f, s)
  print(f'[train_drafter] trained acceptance:\n{after}', file=sys.stderr)
  info = {'steps': s.steps, 'train_examples': len(examples) - n_eval, 'eval_examples': n_eval,
          'data_path': dcfg.data_path, 'data_where': data_where, 'settings': dataclasses.asdict(s),
          'acceptance': after.tolist(), 'acceptance_untrained': before.tolist(),
          'final_loss': float(np.mean(log['loss'][-20:])) if log['loss'] else None,
          'seconds': time.perf_counter() - t0}
  path = save_drafter(output, dparams, kind=s.kind, num_heads=s.num_heads,
                      base_params=runtime.params, model_cfg=config.model,
                      transfer_layer=s.transfer_layer if s.kind == 'hidden_transfer' else None,
                      train_info=info, overwrite=dcfg.overwrite)
  print(f'[train_drafter] wrote {path}', file=sys.stderr)
  print(json.dumps({'output': path, 'kind': s.kind, 'acceptance': after.tolist(),
                    'acceptance_untrained': before.tolist()}))
