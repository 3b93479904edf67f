"""Held-out requests for the APAR evaluation and the base model's answers to them (cached, resumable).

Held-out = the prompt generator's 'heldout' split (topics and templates the distillation, which reads
the 'train' split, never sees; `apar_data.prompt_generator`). The base model answers
them with the distillation's own sampling settings, in batches, until there are `num_list` answers
that extract into a *list* tree (the requests "the base model answers with a list") and `num_plain`
finished answers with no tree (the held-out plain answers the losses are measured on). Every answer is
appended to a JSONL cache as it arrives; a re-run reads the cache and answers only what is missing.
"""

import dataclasses
import json
import os
from typing import Sequence

import ml_collections

from apar_jax.apar_data.prompt_generator import Prompt, generate_prompts
from apar_jax.apar_data.sharegpt import trim_to_last_block
from apar_jax.apar_data.structure import extract_tree


@dataclasses.dataclass(frozen=True)
class HeldoutAnswer:
  """One held-out request and the base model's answer (token ids end with a stop id if finished)."""
  id: str
  kind: str  # the request's kind: 'list' | 'paragraphs' | 'plain'
  prompt: str
  prompt_ids: tuple[int, ...]
  answer_ids: tuple[int, ...]
  text: str
  finished: bool
  tree_kind: str  # 'list' | 'paragraphs' | '' (no tree)


def answer_tree_kind(text: str, finished: bool) -> str:
  """The tree kind of an answer ('' for none); a cut answer counts up to its last complete block."""
  if not finished:
    text = trim_to_last_block(text)
  if not text:
    return ''
  tree = extract_tree(text).tree
  return tree.kind if tree is not None else ''


def heldout_prompts(config: ml_collections.ConfigDict, count: int) -> list[Prompt]:
  """The first `count` requests of the held-out split (in the distillation's seed's order)."""
  return generate_prompts(count, int(config.distill.prompt_seed), split='heldout')


def read_cache(path: str) -> dict[str, HeldoutAnswer]:
  if not os.path.exists(path):
    return {}
  out = {}
  with open(path, encoding='utf-8') as f:
    for line in f:
      try:
        record = json.loads(line)
        record['prompt_ids'] = tuple(record['prompt_ids'])
        record['answer_ids'] = tuple(record['answer_ids'])
        answer = HeldoutAnswer(**record)
      except (json.JSONDecodeError, TypeError, KeyError):
        continue  # a partial last line from an interrupted run
      out[answer.id] = answer
  return out


def _enough(answers: Sequence[HeldoutAnswer], num_list: int, num_plain: int) -> bool:
  lists = sum(a.kind == 'list' and a.tree_kind == 'list' for a in answers)
  plain = sum(a.kind == 'plain' and a.finished and not a.tree_kind for a in answers)
  return lists >= num_list and plain >= num_plain


def select(answers: Sequence[HeldoutAnswer], num_list: int,
           num_plain: int) -> tuple[list[HeldoutAnswer], list[HeldoutAnswer]]:
  """(list answers, plain answers), in request order, at most `num_list` / `num_plain`."""
  lists = [a for a in answers if a.kind == 'list' and a.tree_kind == 'list'][:num_list]
  plain = [a for a in answers if a.kind == 'plain' and a.finished and not a.tree_kind][:num_plain]
  return lists, plain


def base_answers(config: ml_collections.ConfigDict, cache_path: str, *, num_list: int,
                 num_plain: int, max_candidates: int = 400) -> tuple[list[HeldoutAnswer],
                                                                      list[HeldoutAnswer]]:
  """The held-out list and plain answers of the base model (answering only what the cache lacks)."""
  from apar_jax.commands.base_answers import answer_batches, base_runtime
  prompts = heldout_prompts(config, max_candidates)
  cached = read_cache(cache_path)
  done = [cached[p.id] for p in prompts if p.id in cached]
  todo = [p for p in prompts if p.id not in cached and p.kind in ('list', 'plain')]
  if _enough(done, num_list, num_plain):
    return select(done, num_list, num_plain)
  os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
  with open(cache_path, 'a', encoding='utf-8') as f:
    for batch in answer_batches(base_runtime(config), config, config.distill, todo,
                                desc='base answers'):
      for a in batch:
        item = HeldoutAnswer(a.prompt.id, a.prompt.kind, a.prompt.text, tuple(a.prompt_ids),
                             tuple(a.answer_ids), a.text, a.finished,
                             answer_tree_kind(a.text, a.finished))
        f.write(json.dumps(dataclasses.asdict(item), ensure_ascii=False) + '\n')
        done.append(item)
      f.flush()
      if _enough(done, num_list, num_plain):
        break
  lists, plain = select(done, num_list, num_plain)
  if len(lists) < num_list or len(plain) < num_plain:
    raise RuntimeError(f'only {len(lists)} list and {len(plain)} plain answers among the first '
                       f'{max_candidates} held-out requests; lower --num_list/--num_plain or raise '
                       '--max_candidates')
  return lists, plain
