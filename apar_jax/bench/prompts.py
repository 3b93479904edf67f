"""The benchmark prompt set: prompts labelled by the kind of answer they ask for.

The default set (`data/bench_prompts.jsonl`) mixes list-style requests (numbered items: APAR forks
one branch per item), paragraph-style requests (APAR forks one branch per paragraph) and plain
requests (short answers: nothing to parallelise). `--prompts_file` takes any other .jsonl (a
"prompt" field and optionally a "kind") or .txt file (one prompt per line, kind "unlabelled").
"""

import dataclasses
import json
import os
from typing import Optional

from apar_jax.cli_flags import REPO_ROOT

DEFAULT_PROMPTS_FILE = os.path.join(REPO_ROOT, 'data', 'bench_prompts.jsonl')
KINDS = ('list', 'paragraph', 'plain')
UNLABELLED = 'unlabelled'


@dataclasses.dataclass(frozen=True)
class BenchPrompt:
  """One benchmark prompt and the kind of answer it asks for."""
  prompt: str
  kind: str = UNLABELLED


def _parse_jsonl_line(line: str, where: str) -> BenchPrompt:
  try:
    record = json.loads(line)
  except json.JSONDecodeError as e:
    raise ValueError(f'{where}: not valid JSON ({e})') from e
  if not isinstance(record, dict) or not isinstance(record.get('prompt'), str):
    raise ValueError(f'{where}: each line needs a string "prompt" field')
  if not record['prompt'].strip():
    raise ValueError(f'{where}: the prompt is empty')
  kind = record.get('kind', UNLABELLED)
  if kind not in KINDS + (UNLABELLED,):
    raise ValueError(f'{where}: kind {kind!r} is not one of {", ".join(KINDS)}')
  return BenchPrompt(record['prompt'], kind)


def load_prompts(path: Optional[str] = None, limit: Optional[int] = None) -> list[BenchPrompt]:
  """Prompts of `path` (default: the shipped set), the first `limit` of them if given."""
  path = path or DEFAULT_PROMPTS_FILE
  if not os.path.exists(path):
    raise FileNotFoundError(f'prompts file {path!r} does not exist')
  with open(path, encoding='utf-8') as f:
    lines = f.read().splitlines()
  if path.endswith('.jsonl'):
    prompts = [_parse_jsonl_line(line, f'{path}:{n}') for n, line in enumerate(lines, 1)
               if line.strip()]
  elif path.endswith('.txt'):
    prompts = [BenchPrompt(line) for line in lines if line.strip()]
  else:
    raise ValueError(f'prompts file must end in .jsonl or .txt, got {path!r}')
  if not prompts:
    raise ValueError(f'prompts file {path!r} holds no prompts')
  return prompts[:limit] if limit else prompts
