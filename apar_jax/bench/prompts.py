"""The benchmark prompt set: prompts labelled by the kind of answer they ask for.

The default set (`data/bench_prompts.jsonl`) mixes list-style requests (numbered items: APAR forks
one branch per item), paragraph-style requests (APAR forks one branch per paragraph) and plain
requests (short answers: nothing to parallelise). `--prompts_file` takes any other .jsonl (a
"prompt" field, optionally a "kind" and a "category") or .txt file (one prompt per line, kind
"unlabelled").

The drafter set (`data/category_prompts.jsonl`, `CATEGORY_PROMPTS_FILE`) holds 52 requests in 13
categories (`CATEGORIES`: writing, roleplay, reasoning, math, coding, extraction, STEM, humanities,
translation, summarization, QA, math reasoning, RAG), 4 each, written for this project: how much a
drafter keeps depends on what is asked, so its figures are reported per category. It is an
evaluation set: no recipe trains, tunes or picks on it.
"""

import dataclasses
import json
import os
from typing import Optional


# the checkout's data/ (this module reads no flags: standalone benchmarks define their own)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_PROMPTS_FILE = os.path.join(REPO_ROOT, 'data', 'bench_prompts.jsonl')
CATEGORY_PROMPTS_FILE = os.path.join(REPO_ROOT, 'data', 'category_prompts.jsonl')
CATEGORIES = ('writing', 'roleplay', 'reasoning', 'math', 'coding', 'extraction', 'stem',
              'humanities', 'translation', 'summarization', 'qa', 'math_reasoning', 'rag')
KINDS = ('list', 'paragraph', 'plain')
UNLABELLED = 'unlabelled'


@dataclasses.dataclass(frozen=True)
class BenchPrompt:
  """One benchmark prompt, the kind of answer it asks for and (optionally) its task category."""
  prompt: str
  kind: str = UNLABELLED
  category: str = ''  # '' = none; figures are grouped per category when a set has them


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
  category = record.get('category', '')
  if not isinstance(category, str):
    raise ValueError(f'{where}: "category" must be a string, got {category!r}')
  return BenchPrompt(record['prompt'], kind, category.strip())


def load_prompts(path: Optional[str] = None, limit: Optional[int] = None) -> list[BenchPrompt]:
  """Prompts of `path` (default: the shipped set), the first `limit` of them if given."""
  path = path or DEFAULT_PROMPTS_FILE
  if not os.path.exists(path):
    raise FileNotFoundError(f'prompts file {path!r} does not exist')
  with open(path, encoding='utf-8') as f:
    lines = f.read().split('\n')  # not splitlines(): a JSON string may hold a raw U+2028
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
