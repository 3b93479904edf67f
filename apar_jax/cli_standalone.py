"""Running a command module on its own (`python -m apar_jax.commands.bench`, `python -m
apar_jax.bench.http_serving`) with the flags and one-line errors of `python -m apar_jax`."""

from typing import Callable

import ml_collections


def run_standalone(run: Callable[[ml_collections.ConfigDict], None]) -> None:
  """absl's `app.run` around `run(config)`: no positional arguments, `--config` loaded (or a
  one-line error), flag errors as one line."""
  from absl import app

  from apar_jax import cli_errors, cli_flags

  def main(argv: list[str]) -> None:
    if len(argv) > 1:
      raise app.UsageError(f'unexpected arguments: {argv[1:]}')
    try:
      run(cli_errors.loaded_config(cli_flags.CONFIG))
    except (ValueError, FileNotFoundError) as e:
      cli_errors.fail(str(e))

  app.run(main, flags_parser=cli_errors.parse_flags)
