"""`python -m apar_jax train --config=configs/apar_smollm2_135m.py [--config.train.FIELD=...]`.

With `train.distill_first`, first completes (or resumes) `distill` into `train.data_path`, so one
command runs the whole recipe. Then trains (or resumes) the run described by `config.train` (see
apar_jax/defaults/training.py), writes the adapter (LoRA) or params (full fine-tuning) to
`train.export_dir` and, when `train.plot_path` is set, the loss curve.
"""

import sys

import ml_collections

from apar_jax.training.plot import plot_loss
from apar_jax.training.trainer import train


def run(config: ml_collections.ConfigDict) -> None:
  if 'train' not in config:
    raise ValueError('this config has no train section: use configs/apar_smollm2_135m.py or add '
                     'config.train = apar_jax.defaults.train_defaults()')
  if config.train.get('distill_first', False):
    from apar_jax.commands import distill
    if distill.distill_section(config).output != config.train.data_path:
      raise ValueError('train.distill_first needs train.data_path == distill.output '
                       f'({config.train.data_path!r} != {distill.distill_section(config).output!r})')
    distill.run(config)
  if not config.train.data_path:
    raise ValueError('config.train.data_path is empty: pass --config.train.data_path=FILE.jsonl '
                     '(ShareGPT, e.g. the output of `python -m apar_jax distill`)')
  result = train(config)
  print(f'[train] steps {result.start_step} -> {result.end_step}; '
        f'{result.tokens_per_s:.0f} tokens/s', file=sys.stderr)
  from apar_jax.distributed import is_main_process
  if config.train.plot_path and result.end_step > 0 and is_main_process():  # from process 0's logs
    path = plot_loss(config.train.log_dir, config.train.plot_path)
    print(f'[train] loss curve: {path}', file=sys.stderr)
