"""Attention kernels of apar-jax: paged branch attention (decode / tree verify) and packed-tree
attention (APAR training and prefill), each a pure-jnp reference plus Pallas TPU and GPU kernels
behind one dispatcher. See pallas_kernels/README.md."""

from pallas_kernels.branch_attention.dispatch import branch_attention
from pallas_kernels.impl import IMPLS, resolve_impl
from pallas_kernels.packed_tree.dispatch import packed_tree_attention

__all__ = ["IMPLS", "branch_attention", "packed_tree_attention", "resolve_impl"]
