"""The requests the APAR evaluation asks: the generator's held-out split, or the user's own file.

    requests = heldout_requests(seed=0, num_list=50, num_plain=20)
    requests = read_prompts_file('my_requests.jsonl')   # or .txt: one request per line

A `.jsonl` file holds one object per line with `prompt` and optionally `kind` ('list': a request that
asks for a list, the default; 'plain': one that should get a plain answer without forks) and `id`;
any other file is read as one request per non-blank line, all of kind 'list'.
"""

import dataclasses
import hashlib
import json
import os

from apar_jax.apar_data.prompt_generator import generate_prompts

KINDS = ('list', 'plain')


@dataclasses.dataclass(frozen=True)
class EvalRequest:
  id: str
  kind: str  # 'list' | 'plain'
  text: str


def _id(text: str) -> str:
  return hashlib.sha1(text.encode()).hexdigest()[:12]


def heldout_requests(seed: int, num_list: int, num_plain: int) -> list[EvalRequest]:
  """The first `num_list` list and `num_plain` plain requests of the held-out split (lists first),
  in the seed's order (the generator's: the same requests on every machine)."""
  out = []
  for kind, count in (('list', num_list), ('plain', num_plain)):
    if count:
      out += [EvalRequest(p.id, kind, p.text)
              for p in generate_prompts(count, seed, shares={kind: 1.0}, split='heldout')]
  return out


def read_prompts_file(path: str) -> list[EvalRequest]:
  """The requests of a `.jsonl` file (`prompt`, optional `kind`, `id`) or a one-per-line text file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f'prompts file {path!r} does not exist')
  out = []
  with open(path, encoding='utf-8') as f:
    for number, line in enumerate(f, 1):
      line = line.strip()
      if not line:
        continue
      if not path.endswith('.jsonl'):
        out.append(EvalRequest(_id(line), 'list', line))
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f'{path}:{number}: not JSON ({e.msg}); a .jsonl prompts file holds one '
                         '{"prompt": ..., "kind": "list"|"plain"} per line') from None
      if not isinstance(record, dict) or not isinstance(record.get('prompt'), str):
        raise ValueError(f'{path}:{number}: needs a "prompt" string')
      kind = record.get('kind', 'list')
      if kind not in KINDS:
        raise ValueError(f'{path}:{number}: kind must be one of {KINDS}, got {kind!r}')
      out.append(EvalRequest(str(record.get('id', _id(record['prompt']))), kind, record['prompt']))
  if not out:
    raise ValueError(f'prompts file {path!r} holds no request')
  ids = [r.id for r in out]
  if len(set(ids)) != len(ids):
    raise ValueError(f'prompts file {path!r} repeats a request (or an id)')
  return out
