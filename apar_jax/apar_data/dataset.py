"""ShareGPT file -> APAR and plain examples mixed at a ratio -> packed rows -> batches by step.

Every structured answer (see `structure.extract_tree`) of a kind in `tree_kinds` ('list',
'paragraphs') becomes an APAR tree example; every answer without a tree a plain chat example; a tree
of another kind either a plain example (`excluded_trees='plain'`: the model learns to write it
without forking) or nothing (`'drop'`). `plain_fraction` fixes the share of plain examples: the
side in excess is subsampled (deterministically). `salvage_budget_cuts` brings back distilled
answers dropped only for the token budget, cut to their complete blocks (`budget_salvage.py`);
`list_demo_only` first leaves out the list answers distilled without a format demonstration
(`demonstrated.py`); `list_answers_counted` last leaves out those that do not announce the number
of items they write (`announced_count.py`). The batch of a step is a pure function of (seed, step),
so a resumed run sees exactly the batches an uninterrupted one would.
"""

import collections
import dataclasses
import random
from typing import Optional, Sequence, get_args

import numpy as np

from apar_jax.apar_data.announced_count import counted_list_answers
from apar_jax.apar_data.answer_tree import Kind
from apar_jax.apar_data.budget_salvage import salvage_budget_cuts as salvage
from apar_jax.apar_data.demonstrated import demonstrated_list_answers
from apar_jax.apar_data.examples import Example, tokenize_exchange
from apar_jax.apar_data.format_demos import demo_turns
from apar_jax.apar_data.layouts import TokenCounts, branch_layout, token_counts
from apar_jax.apar_data.packing import PackedRows, pack_rows
from apar_jax.apar_data.record_where import list_answers_where as answers_where, parse_where
from apar_jax.apar_data.sharegpt import Exchange, exchanges, read_conversations
from apar_jax.apar_data.structure import extract_tree
from apar_jax.tokenization import Tokenizer, encode_chat

LAYOUTS = ('packed', 'branch_rows')
TREE_KINDS: tuple[str, ...] = get_args(Kind)  # ('list', 'paragraphs')
EXCLUDED_TREES = ('plain', 'drop')


@dataclasses.dataclass(frozen=True)
class DataStats:
  exchanges: int
  trees: int
  plain: int
  used_trees: int
  used_plain: int
  reasons: dict[str, int]  # why answers got no tree
  counts: TokenCounts  # of the used tree examples
  rows: int
  dropped: int
  fill: float  # fraction of row slots holding tokens
  salvaged: int = 0  # budget-cut distilled answers brought back (`salvage_budget_cuts`)
  undemonstrated: int = 0  # list answers left out as distilled without a demo (`list_demo_only`)
  unmatched: str = ''  # `list_answers_where` given: "<n> list answers not distilled with <it>"
  uncounted: int = 0  # list answers left out for not keeping an announced count
  demo_name: str = ''  # `list_demo_name`: the one demonstration whose list answers stay

  def summary(self) -> str:
    salvaged = f' ({self.salvaged} salvaged from budget cuts)' if self.salvaged else ''
    demo = f'the {self.demo_name}' if self.demo_name else 'the format'
    undemonstrated = (f'left out {self.undemonstrated} list answers distilled without {demo} '
                      'demonstration; ' if self.undemonstrated else '')
    unmatched = f'left out {self.unmatched}; ' if self.unmatched else ''
    uncounted = (f'left out {self.uncounted} list answers that do not write the number of items '
                 'they announce; ' if self.uncounted else '')
    return (f'{undemonstrated}{unmatched}{uncounted}{self.exchanges} answers{salvaged}: '
            f'{self.trees} trees, '
            f'{self.plain} plain (no tree: {dict(self.reasons)}); used {self.used_trees} trees + '
            f'{self.used_plain} plain; '
            f'tree tokens {self.counts.packed} packed vs {self.counts.branch_layout} one-row-per-'
            f'branch (saving {100 * self.counts.saving:.1f}%); {self.rows} rows, {self.dropped} '
            f'examples dropped as too long, fill {100 * self.fill:.1f}%')


def mix(trees: list[Example], plain: list[Example], plain_fraction: float,
        seed: int) -> tuple[list[Example], list[Example]]:
  """Subsamples the side in excess so that plain / (trees + plain) == plain_fraction."""
  if not 0.0 <= plain_fraction <= 1.0:
    raise ValueError(f'plain_fraction must be in [0, 1], got {plain_fraction}')
  rng = random.Random(seed)
  if plain_fraction == 0.0:
    return trees, []
  if plain_fraction == 1.0:
    return [], plain
  want_plain = round(len(trees) * plain_fraction / (1.0 - plain_fraction))
  if want_plain <= len(plain):
    return trees, rng.sample(plain, want_plain)
  want_trees = round(len(plain) * (1.0 - plain_fraction) / plain_fraction)
  return rng.sample(trees, min(want_trees, len(trees))), plain


def check_tree_kinds(tree_kinds: Sequence[str], excluded_trees: str = 'plain') -> tuple[str, ...]:
  """`tree_kinds` as a tuple, or ValueError naming the values there are."""
  kinds = (tree_kinds,) if isinstance(tree_kinds, str) else tuple(tree_kinds)  # 'list' = ('list',)
  unknown = [k for k in kinds if k not in TREE_KINDS]
  if unknown or not kinds:
    raise ValueError(f'tree_kinds must be a non-empty subset of {TREE_KINDS}, got {kinds}')
  if excluded_trees not in EXCLUDED_TREES:
    raise ValueError(f'excluded_trees must be one of {EXCLUDED_TREES}, got {excluded_trees!r}')
  return kinds


def build_examples(items: Sequence[Exchange], tokenizer: Tokenizer, chat_template: str,
                   system_prompt: Optional[str], tree_kinds: Sequence[str] = TREE_KINDS,
                   excluded_trees: str = 'plain'
                   ) -> tuple[list[Example], list[Example], collections.Counter]:
  """(tree examples, plain examples, counts of reasons for no tree).

  A tree of a kind outside `tree_kinds` is counted as 'kind_<kind>' and, by `excluded_trees`,
  written out as a plain example or left out.
  """
  kinds = check_tree_kinds(tree_kinds, excluded_trees)
  trees, plain, reasons = [], [], collections.Counter()
  for item in items:
    extraction = extract_tree(item.answer)
    tree = extraction.tree
    if tree is not None and tree.kind not in kinds:
      reasons[f'kind_{tree.kind}'] += 1
      if excluded_trees == 'drop':
        continue
      tree = None
    elif tree is None:
      reasons[extraction.reason] += 1
    prompt = encode_chat(tokenizer, list(item.messages), chat_template, system_prompt=system_prompt)
    example = tokenize_exchange(tokenizer, prompt, item.answer, tree)
    (plain if tree is None else trees).append(example)
  return trees, plain, reasons


def build_rows(path: str, tokenizer: Tokenizer, *, chat_template: str, system_prompt: Optional[str],
               layout: str, plain_fraction: float, seq_len: int, max_branches: int,
               seed: int, max_exchanges: int = 0, unfinished: str = 'drop',
               tree_kinds: Sequence[str] = TREE_KINDS,
               excluded_trees: str = 'plain',
               salvage_budget_cuts: bool = False,
               list_demo_only: bool = False,
               list_demo_name: str = '',
               list_answers_where: str = '',
               list_answers_counted: bool = False) -> tuple[PackedRows, DataStats]:
  """Reads `path` and returns the packed training rows and what went into them."""
  if layout not in LAYOUTS:
    raise ValueError(f'layout must be one of {LAYOUTS}, got {layout!r}')
  tree_kinds = check_tree_kinds(tree_kinds, excluded_trees)  # before the file is read
  if salvage_budget_cuts and unfinished != 'trim':
    raise ValueError("salvage_budget_cuts needs unfinished='trim' (a salvaged answer is read "
                     "cut back to its complete blocks): set --config.train.unfinished=trim")
  if list_demo_name and not list_demo_only:
    raise ValueError(f'list_demo_name={list_demo_name!r} needs list_demo_only: set '
                     '--config.train.list_demo_only=True')
  demo_turns(list_demo_name)  # an unknown name: ValueError naming the demonstrations there are
  where = parse_where(list_answers_where)
  records = read_conversations(path)
  undemonstrated = 0
  if list_demo_only:
    records, undemonstrated = demonstrated_list_answers(records, list_demo_name)
  unmatched = ''
  if where:
    records, left_out = answers_where(records, where)
    unmatched = f'{left_out} list answers not distilled with {list_answers_where}'
  salvaged = 0
  if salvage_budget_cuts:
    records, salvaged = salvage(records)
  uncounted = 0
  if list_answers_counted:
    records, uncounted = counted_list_answers(records)
  items = list(exchanges(records, unfinished))
  if max_exchanges:
    items = items[:max_exchanges]
  if not items:
    hints = []
    if undemonstrated:
      hints.append('the list answers distilled without a format demonstration are left out: distil '
                   'with distill.list_demo or set --config.train.list_demo_only=False')
    if unmatched:
      hints.append(f'{unmatched} are left out: check the fields of its records or set '
                   "--config.train.list_answers_where=''")
    if uncounted:
      hints.append(f'{uncounted} list answers that do not write the number of items they announce '
                   'are left out: set --config.train.list_answers_counted=False')
    hint = ' once ' + '; and '.join(hints) if hints else ''
    raise ValueError(f'{path} holds no (human, gpt) exchanges to train on{hint}')
  trees, plain, reasons = build_examples(items, tokenizer, chat_template, system_prompt,
                                         tree_kinds, excluded_trees)
  used_trees, used_plain = mix(trees, plain, plain_fraction, seed)
  examples = used_trees + used_plain
  if layout == 'branch_rows':
    examples = [row for ex in examples for row in branch_layout(ex)]
  random.Random(seed + 1).shuffle(examples)
  rows = pack_rows(examples, seq_len, max_branches)
  if rows.num_rows == 0:
    raise ValueError(f'no example of {path} fits a row of {seq_len} tokens: raise '
                     '--config.train.seq_len')
  fill = float((rows.branch_ids >= 0).mean())
  stats = DataStats(len(items), len(trees), len(plain), len(used_trees), len(used_plain),
                    dict(reasons), token_counts(used_trees), rows.num_rows, rows.dropped, fill,
                    salvaged, undemonstrated, unmatched, uncounted, list_demo_name)
  return rows, stats


def batch_rows(num_rows: int, batch_size: int, step: int, seed: int) -> np.ndarray:
  """Row indices [batch_size] of step `step`: epochs of seeded permutations, read in order."""
  if num_rows < 1:
    raise ValueError('no rows to draw batches from')
  first = step * batch_size
  out, perms = [], {}
  for i in range(first, first + batch_size):
    epoch, offset = divmod(i, num_rows)
    if epoch not in perms:
      perms[epoch] = np.random.default_rng([seed, epoch]).permutation(num_rows)
    out.append(perms[epoch][offset])
  return np.asarray(out, np.int64)
