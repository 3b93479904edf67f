"""A deterministic generator of user requests for self-distillation (templates x topics).

The shipped files `data/apar_prompts/templates.json` ({kind: {topic category: [template with {x}]}})
and `topics.json` ({topic category: [topic]}) give three kinds of request: 'list' (answers that are
lists), 'paragraphs' (multi-paragraph answers) and 'plain' (short answers). `generate_prompts(n, seed)`
shuffles every kind's template x topic combinations with the seed and interleaves the kinds by
`KIND_SHARES`, so any prefix of the output has about the same mix. Ids are derived from the text.
"""

import dataclasses
import hashlib
import json
import os
import random
from typing import Optional

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        'data', 'apar_prompts')
KIND_SHARES = {'list': 0.6, 'paragraphs': 0.2, 'plain': 0.2}


@dataclasses.dataclass(frozen=True)
class Prompt:
  id: str
  kind: str
  text: str


def _load(data_dir: str) -> tuple[dict, dict]:
  paths = [os.path.join(data_dir, name) for name in ('templates.json', 'topics.json')]
  for p in paths:
    if not os.path.exists(p):
      raise FileNotFoundError(f'prompt data file {p} is missing: it ships in the repository under '
                              'data/apar_prompts/')
  with open(paths[0], encoding='utf-8') as f:
    templates = json.load(f)
  with open(paths[1], encoding='utf-8') as f:
    topics = json.load(f)
  return templates, topics


def all_prompts(data_dir: str = DATA_DIR) -> dict[str, list[str]]:
  """Every distinct request of each kind, in file order."""
  templates, topics = _load(data_dir)
  out = {}
  for kind, by_category in templates.items():
    texts = []
    for category, forms in by_category.items():
      if category not in topics:
        raise ValueError(f'templates.json uses topic category {category!r}, missing from topics.json')
      texts += [form.replace('{x}', topic) for form in forms for topic in topics[category]]
    out[kind] = list(dict.fromkeys(texts))
  return out


def prompt_id(text: str) -> str:
  return hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]


def generate_prompts(n: int, seed: int = 0, data_dir: str = DATA_DIR,
                     shares: Optional[dict[str, float]] = None) -> list[Prompt]:
  """`n` distinct requests, kinds mixed by `shares` (default `KIND_SHARES`); deterministic."""
  shares = shares or KIND_SHARES
  pools = all_prompts(data_dir)
  unknown = set(shares) - set(pools)
  if unknown:
    raise ValueError(f'unknown prompt kinds {sorted(unknown)}; the data has {sorted(pools)}')
  total = sum(len(pools[k]) for k in shares)
  if not 0 < n <= total:
    raise ValueError(f'can generate between 1 and {total} distinct prompts, asked for {n}')
  rng = random.Random(seed)
  queues = {}
  for kind in shares:
    queue = list(pools[kind])
    rng.shuffle(queue)
    queues[kind] = queue
  taken = {k: 0 for k in shares}
  out: list[Prompt] = []
  while len(out) < n:
    # The kind furthest below its share (among those with prompts left) goes next.
    open_kinds = [k for k in shares if taken[k] < len(queues[k])]
    kind = min(open_kinds, key=lambda k: (taken[k] + 1) / max(shares[k], 1e-9))
    text = queues[kind][taken[kind]]
    taken[kind] += 1
    out.append(Prompt(prompt_id(text), kind, text))
  return out
