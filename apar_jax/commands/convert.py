"""`python -m apar_jax convert`: Hugging Face directory or GGUF file -> orbax checkpoint of our params."""

import sys

import ml_collections

from apar_jax import cli_flags


def run(config: ml_collections.ConfigDict) -> None:
  from apar_jax.weights import convert
  kind, source, out_dir = cli_flags.SOURCE_KIND.value, cli_flags.SOURCE.value, cli_flags.OUT_DIR.value
  if kind == 'default':
    from apar_jax.weights import default_gguf_path
    kind, source = 'gguf', source or default_gguf_path()
  if not (kind and source and out_dir):
    raise ValueError('convert needs --source_kind=hf|gguf|default, --source=PATH (not for default) '
                     'and --out_dir=DIR')
  convert(kind, source, out_dir, config.model)
  print(f'[convert] wrote {out_dir}; load it with --config.weights.source=orbax '
        f'--config.weights.path={out_dir}', file=sys.stderr)
