"""Speculative engine modes: which drafter, which tree, which acceptance rule (resolved once, before
anything compiles, into a `SpecConfig` and the drafter's params).

Modes: `lookup`, `medusa`, `hidden_transfer`, `token_recycling` (AR + drafts) and `apar_<drafter>`
(APAR + drafts).
`resolve_speculative(config, mode, params)` reads `config.speculative` (defaults:
`apar_jax.defaults.speculative_config`), loads the drafter checkpoint (its fingerprint must
match the base model), builds the tree and checks that the tree fits the drafter and the capacities.
Every problem is a `ValueError` (`TreeError`, `DrafterMismatchError`, `FileNotFoundError` are kept as
such) raised here, never inside a compiled function.
"""

import ast
import dataclasses
import os
from typing import Any, Optional

import ml_collections
import numpy as np

from apar_jax.engine.device import row_buckets
from apar_jax.engine.setup import tree_plan
from apar_jax.defaults import checkout_root
from apar_jax.engine.setup.sections import engine_section, speculative_section
from apar_jax.engine.device.spec_config import SpecConfig
from apar_jax.modes import split_mode
from apar_jax.engine.setup.tree_plan import BucketChoice
from apar_jax.model import build_model
from apar_jax.speculative import acceptance_tally, step_cost
from apar_jax.speculative.auto_tree import greedy_paths
from apar_jax.speculative.drafter import Drafter
from apar_jax.speculative.tree import TokenTree, TreeError

ACCEPTANCE = ('exact', 'typical')  # exact = greedy / rejection sampling (lossless); typical = LOSSY


@dataclasses.dataclass(frozen=True)
class SpeculativeSetup:
  """A resolved speculative mode: static config + drafter params (None for prompt lookup)."""
  spec: SpecConfig
  params: Any = None
  info: Any = None  # drafter checkpoint metadata (dict) or None
  plan: tuple[BucketChoice, ...] = ()  # tree='auto': each bucket's tree and its estimate

  def describe_plan(self) -> str:
    """One line per bucket ('' without a measured plan)."""
    return '\n'.join(c.describe() for c in self.plan)


def parse_tree(text: Any) -> TokenTree:
  """'(0,),(1,),(0,0)' or a list of paths -> TokenTree."""
  if isinstance(text, str):
    try:
      value = ast.literal_eval(text if text.strip().startswith('[') else f'[{text}]')
    except (ValueError, SyntaxError) as e:
      raise TreeError(f'cannot read the tree {text!r}: give paths like "(0,),(1,),(0,0)", or '
                      f"'auto' / 'chain'") from e
  else:
    value = text
  return TokenTree.from_paths([tuple(p) if isinstance(p, (tuple, list)) else (p,) for p in value])


def acceptance_table(sec: ml_collections.ConfigDict, kind: str, num_heads: int, topk: int,
                     info: Optional[dict]) -> Optional[np.ndarray]:
  """[D, K] acceptance rate of every drafted (level, rank): the configured or trained table, with
  what `sec.acceptance_file` measured for this drafter on running requests in its place."""
  prior = prior_acceptance(sec, kind, num_heads, topk, info)
  path = str(sec.get('acceptance_file', '') or '')
  measured = acceptance_tally.read(path, kind) if path else None
  if prior is None or measured is None:
    return prior
  return acceptance_tally.overlay(prior, measured)


def prior_acceptance(sec: ml_collections.ConfigDict, kind: str, num_heads: int, topk: int,
                     info: Optional[dict]) -> Optional[np.ndarray]:
  """[D, K] the checkpoint's table measured on held-out rows (Medusa, Hidden Transfer),
  `lookup_acceptance` per level (prompt lookup, the last value repeated) or `recycling_acceptance`
  (token recycling, the last level repeated); None without one (untrained params)."""
  if kind == 'lookup':
    rates = [float(a) for a in np.atleast_1d(np.asarray(sec.lookup_acceptance, np.float64))]
    rates += rates[-1:] * (num_heads - len(rates))
    return np.asarray(rates[:num_heads], np.float64)[:, None]
  if kind == 'token_recycling':
    rows = [list(r) for r in np.atleast_2d(np.asarray(sec.recycling_acceptance, np.float64))]
    rows += rows[-1:] * (num_heads - len(rows))
    table = np.zeros((num_heads, topk), np.float64)
    for level, row in enumerate(rows[:num_heads]):
      table[level, :min(topk, len(row))] = row[:topk]
    return table
  acc = None if not info else info.get('train', {}).get('acceptance')
  return None if acc is None else np.asarray(acc, np.float64)[:num_heads, :topk]


def planned_trees(sec: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                  drafter: Drafter, acc: np.ndarray, params: Any, dparams: Any,
                  ) -> tuple[BucketChoice, ...]:
  """Every row bucket's tree from the step cost measured on this backend (`tree_plan`)."""
  eng = engine_section(config)
  slots = int(eng.max_slots)
  buckets = row_buckets.buckets(slots) if bool(eng.get('row_buckets', True)) else (slots,)
  max_nodes = int(sec.max_tree_nodes)
  model_cfg = config.model
  history = int(eng.pages_per_slot) * int(eng.page_size)
  draft_fn = lambda h, k: step_cost.draft_work(  # noqa: E731
      drafter.kind, params, dparams, model_cfg, h, k, history, drafter.max_ngram,
      drafter.min_ngram)
  shapes = [(h, k) for h in range(1, drafter.num_heads + 1) for k in range(1, drafter.topk + 1)]
  costs = step_cost.step_costs(
      build_model(model_cfg), params, buckets, tree_plan.forward_sizes(drafter, max_nodes),
      draft_fn, shapes, drafter.kind,
      context=int(sec.step_cost_context), page_size=int(eng.page_size),
      attention_impl=str(eng.get('attention_impl', 'auto')), cache_path=str(sec.step_cost_cache),
      remeasure=bool(sec.remeasure_step_cost))
  return tree_plan.plan_trees(acc, costs, drafter, buckets, max_nodes, int(model_cfg.n_layers))


def _build_tree(sec: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                drafter: Drafter, params: Any, dparams: Any, info: Optional[dict],
                ) -> tuple[TokenTree, tuple[BucketChoice, ...]]:
  """(tree, plan): 'auto' plans every bucket's tree from the measured step cost (plan non-empty)."""
  tree, kind = sec.tree, drafter.kind
  if tree == 'chain':
    return TokenTree.chain(drafter.num_heads), ()
  if tree != 'auto':
    return parse_tree(tree), ()
  acc = acceptance_table(sec, kind, drafter.num_heads, drafter.topk, info)
  if acc is None:  # no measured acceptance (untrained params): the top-1 chain
    return TokenTree.chain(drafter.num_heads), ()
  if not bool(sec.cost_model):  # the acceptance alone: the best max_tree_nodes-node tree
    return TokenTree.from_paths(greedy_paths(acc, int(sec.max_tree_nodes))), ()
  plan = planned_trees(sec, config, drafter, acc, params, dparams)
  return max((c.tree for c in plan), key=lambda t: t.num_nodes), plan


def _load_checkpoint(sec: ml_collections.ConfigDict, kind: str, params: Any,
                     model_cfg: Any) -> tuple[Any, dict]:
  from apar_jax.speculative.drafter_io import load_drafter
  path = os.path.abspath(str(sec[f'{kind}_path']))  # orbax restores absolute paths only
  repo = checkout_root()
  repo_path = os.path.join(repo, str(sec[f'{kind}_path'])) if repo else path
  if not os.path.isdir(path) and os.path.isdir(repo_path):  # relative to the checkout
    path = repo_path
  if not os.path.isdir(path):
    raise FileNotFoundError(
        f'no trained {kind} drafter at {path!r}: train one with `python -m apar_jax train_drafter '
        f'--config=configs/drafter_{kind}.py` or pass --config.speculative.{kind}_path=<dir>')
  return load_drafter(path, params, model_cfg, kind)


def resolve_speculative(config: ml_collections.ConfigDict, mode: str, params: Any, *,
                        drafter_params: Any = None,
                        drafter_info: Optional[dict] = None) -> Optional[SpeculativeSetup]:
  """The speculative setup of `mode` (None for 'ar' / 'apar').

  `drafter_params` (with `drafter_info`, e.g. {'transfer_layer': 1}) replaces the checkpoint (tests,
  untrained heads). The window gets its own page-table columns (`Capacities.table_width`).
  """
  _, kind = split_mode(mode)
  if kind is None:
    return None
  sec = speculative_section(config)
  model_cfg = config.model
  acceptance = str(sec.acceptance)
  if acceptance not in ACCEPTANCE:
    raise ValueError(f'config.speculative.acceptance must be one of {ACCEPTANCE}, got '
                     f'{acceptance!r}')
  info = drafter_info
  if kind == 'lookup':
    num_heads, topk, dparams = int(sec.lookup_num_draft), 1, None
    drafter = Drafter('lookup', num_heads, 1, max_ngram=int(sec.lookup_max_ngram),
                      min_ngram=int(sec.lookup_min_ngram))
  elif kind == 'token_recycling':  # training-free: the table is built while decoding
    num_heads, topk, dparams = int(sec.recycling_depth), int(sec.recycling_topk), None
    drafter = Drafter('token_recycling', num_heads, topk, max_ngram=int(sec.lookup_max_ngram),
                      min_ngram=int(sec.lookup_min_ngram))
  else:
    dparams = drafter_params
    if dparams is None:
      dparams, info = _load_checkpoint(sec, kind, params, model_cfg)
    info = dict(info or {})
    if kind == 'medusa':
      from apar_jax.speculative.medusa import num_heads_of
      num_heads, layer = num_heads_of(dparams), 0
    else:
      from apar_jax.speculative.hidden_transfer import num_pseudo_of
      num_heads = num_pseudo_of(dparams)
      layer = int(info.get('transfer_layer', int(model_cfg.n_layers) // 2))
      variant = str(sec.hidden_transfer_variant)
      if variant != 'verify':
        raise ValueError(f"the engine runs Hidden Transfer inside the verification forward only "
                         f"(hidden_transfer_variant='verify'); got {variant!r}")
    topk = int(sec.topk)
    drafter = Drafter(kind, num_heads, topk, transfer_layer=layer)
  tree, plan = _build_tree(sec, config, drafter, params, dparams, info)
  drafter.check(tree, model_cfg, dparams)  # TreeError: deeper / wider than the drafter provides
  tree.check_capacity(int(sec.max_tree_nodes), 'config.speculative.max_tree_nodes')
  buckets = tuple((c.rows, c.tree) for c in plan)
  return SpeculativeSetup(SpecConfig(drafter, tree, acceptance, buckets), dparams, info, plan)
