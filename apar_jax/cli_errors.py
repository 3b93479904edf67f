"""One-line errors for what a user gets wrong on the command line, before any work is done.

- a `--config` file that does not exist: the error names it and the configs that do;
- a `--config.a.b=...` override naming no field: the error names the flag and the nearest fields
  of that section (ml_collections raises mid flag parsing, which absl would show as a traceback);
- an `--output` file in a missing directory, or one that exists already (refused unless
  `--overwrite`): checked before decoding, so no work is lost.
"""

import difflib
import glob
import importlib.util
import os
import re
import sys
from typing import Any, NoReturn, Optional, Sequence

from absl import flags

_UNKNOWN_FIELD = re.compile(r"'(\w+)'")


def fail(message: str) -> NoReturn:
  print(f'error: {message}', file=sys.stderr)
  sys.exit(2)


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl's `flags_parser`: parses `argv`, turning every flag error into one line and exit 2."""
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    fail(f'{e} (--helpshort lists the flags)')
  except (AttributeError, KeyError) as e:  # ml_collections: an override names no config field
    fail(unknown_override_message(argv, str(e)))


def _config_path(argv: Sequence[str]) -> Optional[str]:
  for arg in argv:
    if arg.startswith('--config='):
      return arg.split('=', 1)[1]
  from apar_jax.cli_flags import DEFAULT_CONFIG
  return DEFAULT_CONFIG


def _load(path: str) -> Any:
  spec = importlib.util.spec_from_file_location('_apar_cli_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def unknown_override_message(argv: Sequence[str], error: str) -> str:
  """`--config.engine.max_slotz=3: the config has no field 'max_slotz' in engine; nearest: ...`."""
  overrides = [a for a in argv if a.startswith('--config.')]
  found = _UNKNOWN_FIELD.search(error.replace('\\', ''))
  key = found.group(1) if found else None
  flag = next((a for a in overrides if key and re.search(rf'\.{key}(=|\.|$)', a.split('=')[0])),
              overrides[0] if overrides else '--config')
  path = flag.split('=', 1)[0][len('--config.'):].split('.') if flag != '--config' else []
  section, where = None, 'the config'
  try:
    section = _load(_config_path(argv))
    for i, name in enumerate(path):
      if name == key:
        where = 'the config' if i == 0 else f'config.{".".join(path[:i])}'
        break
      section = section[name]
  except Exception:  # noqa: BLE001  (the message then goes without the field list)
    section = None
  names = sorted(section.keys()) if hasattr(section, 'keys') else []
  nearest = difflib.get_close_matches(key or '', names, n=3, cutoff=0.5) if key else []
  hint = (f'; did you mean {", ".join(nearest)}?' if nearest else
          f'; its fields: {", ".join(names)}' if names else '')
  return f'{flag.split("=", 1)[0]}: {where} has no field {key!r}{hint}'


def loaded_config(config_flag: Any) -> Any:
  """The parsed `--config` value, or a one-line error if its file could not be loaded."""
  try:
    config = config_flag.value
    config.keys()  # ml_collections defers a load failure to the first use of the config
    return config
  except (OSError, ImportError, SyntaxError) as e:
    from ml_collections import config_flags
    path = config_flags.get_config_filename(flags.FLAGS[config_flag.name])
    if not os.path.exists(path):
      from apar_jax.cli_flags import REPO_ROOT
      folder = next((d for d in (os.path.dirname(path) or '.', os.path.join(REPO_ROOT, 'configs'))
                     if os.path.isdir(d) and glob.glob(os.path.join(d, '*.py'))), None)
      here = sorted(f for f in glob.glob(os.path.join(folder, '*.py')) if not
                    os.path.basename(f).endswith(('_defaults.py', 'base.py'))) if folder else []
      shown = f'; configs there: {", ".join(here)}' if here else ''
      fail(f'--config={path}: no such file{shown}')
    fail(f'--config={path} could not be loaded: {e}')


def check_output(path: Optional[str], overwrite: bool, what: str = '--output') -> None:
  """Refuses, before any work, an output file whose directory is missing or that exists already
  (unless `overwrite`)."""
  if not path:
    return
  directory = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(directory):
    raise ValueError(f'{what}={path}: the directory {directory} does not exist; create it first '
                     '(nothing was decoded)')
  if os.path.isdir(path):
    raise ValueError(f'{what}={path} is a directory; give a file name')
  if os.path.exists(path) and not overwrite:
    raise ValueError(f'{what}={path} exists already; pass --overwrite to replace it, or choose '
                     'another file (nothing was decoded)')
