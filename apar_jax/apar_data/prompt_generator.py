"""A deterministic generator of user requests for self-distillation, with a held-out split.

The shipped files in `data/apar_prompts/` are written here:
- `templates.json`: {kind: {topic category: [template]}}; a template holds `{x}` (the topic) and
  may hold `{n}` (a small count, "list {n} tips"). Kinds: 'list' (answers that are lists),
  'paragraphs' (multi-paragraph answers), 'plain' (short answers).
- `topics.json`: {topic category: [topic]}.
- `contexts.json`: {topic category: [sentence]}: about a quarter of the list requests of a
  category with contexts get one in front ("I'm on a tight budget. What are some tips for ...").

Held-out split: a topic is held out when its hash falls in one of `HELDOUT_EVERY` buckets, a template
likewise. A request is 'train' when neither its topic nor its template is held out, 'heldout' when
both are (so the evaluation asks about topics, in phrasings, the training never saw), 'mixed'
otherwise (used by neither). Ids, counts and contexts are derived from the text, so the split and the
pools are the same on every machine.

`generate_prompts(n, seed, split)` shuffles each kind's pool with the seed and interleaves the kinds
by `KIND_SHARES`, so any prefix of the output has about the same mix.
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
SPLITS = ('train', 'heldout', 'mixed')
HELDOUT_EVERY = 6  # one topic in 6 and one template in 6 are held out
CONTEXT_EVERY = 4  # one request in 4 (of a category with contexts) gets a context sentence
COUNTS = (3, 4, 5, 6, 7, 8, 10)  # values of `{n}`


@dataclasses.dataclass(frozen=True)
class Prompt:
  id: str
  kind: str
  text: str
  split: str = 'train'


def _hash(text: str) -> int:
  return int(hashlib.sha1(text.encode('utf-8')).hexdigest()[:8], 16)


def prompt_id(text: str) -> str:
  return hashlib.sha1(text.encode('utf-8')).hexdigest()[:12]


def is_held_out(name: str) -> bool:
  """True for the topics and templates of the held-out split."""
  return _hash('heldout:' + name) % HELDOUT_EVERY == 0


def split_of(template: str, topic: str) -> str:
  held = is_held_out(template) + is_held_out(topic)
  return ('train', 'mixed', 'heldout')[held]


def _load(data_dir: str) -> tuple[dict, dict, dict]:
  out = []
  for name in ('templates.json', 'topics.json', 'contexts.json'):
    path = os.path.join(data_dir, name)
    if not os.path.exists(path):
      if name == 'contexts.json':
        out.append({})
        continue
      raise FileNotFoundError(f'prompt data file {path} is missing: it ships in the repository under '
                              'data/apar_prompts/')
    with open(path, encoding='utf-8') as f:
      out.append({k: v for k, v in json.load(f).items() if not k.startswith('_')})
  return out[0], out[1], out[2]


def render(template: str, topic: str, contexts: list[str]) -> str:
  """The request text of one (template, topic): `{n}` and the context are chosen by hash."""
  key = _hash(template + '|' + topic)
  text = template.replace('{x}', topic).replace('{n}', str(COUNTS[key % len(COUNTS)]))
  text = text[0].upper() + text[1:]
  if contexts and (key // len(COUNTS)) % CONTEXT_EVERY == 0:
    text = contexts[(key // 97) % len(contexts)] + ' ' + text
  return text


def prompt_pools(data_dir: str = DATA_DIR) -> dict[str, list[Prompt]]:
  """Every distinct request of each kind (all splits), in file order."""
  templates, topics, contexts = _load(data_dir)
  out = {}
  for kind, by_category in templates.items():
    pool: dict[str, Prompt] = {}
    for category, forms in by_category.items():
      if category not in topics:
        raise ValueError(f'templates.json uses topic category {category!r}, missing from topics.json')
      with_context = contexts.get(category, []) if kind == 'list' else []
      for form in forms:
        for topic in topics[category]:
          text = render(form, topic, with_context)
          pool.setdefault(text, Prompt(prompt_id(text), kind, text, split_of(form, topic)))
    out[kind] = list(pool.values())
  return out


def all_prompts(data_dir: str = DATA_DIR, split: Optional[str] = 'train') -> dict[str, list[str]]:
  """The request texts of each kind in `split` (None = every split), in file order."""
  return {kind: [p.text for p in pool if split is None or p.split == split]
          for kind, pool in prompt_pools(data_dir).items()}


def generate_prompts(n: int, seed: int = 0, data_dir: str = DATA_DIR,
                     shares: Optional[dict[str, float]] = None,
                     split: str = 'train') -> list[Prompt]:
  """`n` distinct requests of `split`, kinds mixed by `shares` (default `KIND_SHARES`);
  deterministic, and `generate_prompts(m)[:n] == generate_prompts(n)` for m > n."""
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}, got {split!r}')
  shares = shares or KIND_SHARES
  pools = {k: [p for p in pool if p.split == split] for k, pool in prompt_pools(data_dir).items()}
  unknown = set(shares) - set(pools)
  if unknown:
    raise ValueError(f'unknown prompt kinds {sorted(unknown)}; the data has {sorted(pools)}')
  total = sum(len(pools[k]) for k in shares)
  if not 0 < n <= total:
    raise ValueError(f'the {split!r} split holds {total} distinct prompts of kinds {sorted(shares)}; '
                     f'asked for {n}')
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
    out.append(queues[kind][taken[kind]])
    taken[kind] += 1
  return out
