"""`python -m apar_jax <command> --config=configs/<name>.py [flags]`.

Commands: generate, serve, bench, distill, train, train_drafter, convert, demo.
"""

import importlib
import logging
import sys

from absl import app

from apar_jax import cli_errors, cli_flags
from apar_jax.bench import flags as bench_flags  # noqa: F401  (defines the bench command's flags)

COMMANDS = {
    'generate': 'apar_jax.commands.generate',
    'convert': 'apar_jax.commands.convert',
    'demo': 'apar_jax.commands.demo',
    'distill': 'apar_jax.commands.distill',
    'train': 'apar_jax.commands.train',
    'train_drafter': 'apar_jax.commands.train_drafter',
    'bench': 'apar_jax.commands.bench',
    'serve': 'apar_jax.commands.serve',
}


def main(argv: list[str]) -> None:
  if len(argv) != 2 or argv[1] not in COMMANDS:
    given = ' '.join(argv[1:]) or '(none)'
    raise app.UsageError(f'expected one command out of {", ".join(COMMANDS)}; got {given}')
  # jax logs every backend it fails to find (no TPU here) at INFO; keep stderr for our own figures.
  logging.getLogger('jax._src.xla_bridge').setLevel(logging.WARNING)
  module = importlib.import_module(COMMANDS[argv[1]])
  from apar_jax.weights import WeightsError
  from apar_jax import distributed
  config = cli_errors.loaded_config(cli_flags.CONFIG)
  try:
    distributed.initialize_from_env_or_flags(cli_flags.COORDINATOR_ADDRESS.value,
                                             cli_flags.NUM_PROCESSES.value,
                                             cli_flags.PROCESS_ID.value)
    module.run(config)
  except (ValueError, FileNotFoundError, WeightsError) as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except KeyboardInterrupt:  # Ctrl-C, or SIGTERM where the command maps it (distill)
    print(f'{argv[1]}: stopped (interrupted); what it had written is kept, and running the same '
          'command again resumes where the command supports it', file=sys.stderr)
    sys.exit(130)


def run() -> None:
  app.run(main, flags_parser=cli_errors.parse_flags)


if __name__ == '__main__':
  run()
