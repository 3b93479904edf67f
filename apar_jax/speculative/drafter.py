"""One description of a drafter, whatever its kind, and the per-step draft functions behind it.

A drafter proposes, for each slot, `num_heads` future positions with `topk` guesses each:
draft [S, num_heads, topk] int32 (-1 = no guess), where head i guesses the token at depth i + 1 of
the next step's tree (the root being the token just chosen). Kinds:
  * 'medusa': from the last committed token's final hidden state (`medusa.propose`).
  * 'hidden_transfer': from its layer-l hidden state, either inside the verification forward
    (variant 'verify') or in a small pass after acceptance (variant 'extra_pass').
  * 'lookup': prompt lookup over the slot's token history (topk = 1).
  * 'token_recycling': a static tree filled by walking an adjacency table of recycled top-k
    candidates (`token_recycling`), its spine from a prompt-lookup match; topk = the table's width.
  * 'oracle': tests only - guesses read from a table of known continuations.
"""

import dataclasses
from typing import Any

from apar_jax.speculative.tree import TokenTree

KINDS = ('medusa', 'hidden_transfer', 'lookup', 'token_recycling', 'oracle')
HT_VARIANTS = ('verify', 'extra_pass')


@dataclasses.dataclass(frozen=True)
class Drafter:
  """Static description (hashable: part of the compile key); params travel separately."""
  kind: str
  num_heads: int
  topk: int = 1
  transfer_layer: int = 0  # hidden_transfer: layers before the transfer (0 = the embeddings)
  ht_variant: str = 'verify'  # hidden_transfer: 'verify' | 'extra_pass'
  max_ngram: int = 3  # lookup, token_recycling (its context match)
  min_ngram: int = 1  # lookup, token_recycling

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ValueError(f'unknown drafter kind {self.kind!r}; choose one of {KINDS}')
    if self.num_heads < 1 or self.topk < 1:
      raise ValueError(f'a drafter needs num_heads >= 1 and topk >= 1, got {self.num_heads}, '
                       f'{self.topk}')
    if self.kind == 'lookup' and self.topk != 1:
      raise ValueError('prompt lookup proposes one continuation: topk must be 1')
    if self.ht_variant not in HT_VARIANTS:
      raise ValueError(f'unknown hidden_transfer variant {self.ht_variant!r}; choose one of '
                       f'{HT_VARIANTS}')

  def check(self, tree: TokenTree, model_cfg: Any, params: Any = None) -> None:
    """Clear errors before compiling: the tree fits the drafter, the drafter fits the model."""
    tree.check_drafter(self.num_heads, self.topk, f'the {self.kind} drafter')
    if self.kind == 'hidden_transfer':
      if not 0 <= self.transfer_layer <= model_cfg.n_layers:
        raise ValueError(f'transfer_layer {self.transfer_layer} is outside [0, '
                         f'{model_cfg.n_layers}] for this {model_cfg.n_layers}-layer model')
      if params is not None and params['kernel'].shape != (self.num_heads, model_cfg.d_model,
                                                           model_cfg.d_model):
        raise ValueError(f'hidden_transfer params have maps of shape {params["kernel"].shape}, '
                         f'expected {(self.num_heads, model_cfg.d_model, model_cfg.d_model)}')
    if self.kind == 'medusa' and params is not None:
      from apar_jax.speculative.medusa import num_heads_of
      if num_heads_of(params) != self.num_heads:
        raise ValueError(f'Medusa params hold {num_heads_of(params)} heads, the drafter says '
                         f'{self.num_heads}')
