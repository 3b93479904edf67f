"""Speculative draft / verify: static token trees, lossless acceptance (greedy, rejection sampling),
typical acceptance (lossy), KV compaction, drafters (Medusa, Hidden Transfer, prompt lookup, Token
Recycling), the automatic tree builder and drafter checkpoints; training lives in
`apar_jax.training.drafter`. See docs/speculative.md.

The engine calls, per step: `tree.candidates` -> one forward (PagedSpec with `tree.block_mask`, or
`hidden_transfer.verify_with_transfer`) -> `greedy_accept` / `rejection_accept` -> `compact_paged`
per layer -> the next draft (`medusa.propose`, the pseudo drafts, `prompt_lookup.lookup`).
`apar_jax.testing.speculative_reference` runs exactly that sequence outside the engine.
"""

from apar_jax.speculative.acceptance import Acceptance, greedy_accept, is_stop, typical_accept
from apar_jax.speculative.compaction import compact_dense, compact_paged, gather_nodes
from apar_jax.speculative.drafter import Drafter
from apar_jax.speculative.drafter_io import drafter_metadata, load_drafter, save_drafter
from apar_jax.speculative.fingerprint import DrafterMismatchError
from apar_jax.speculative.rejection import rejection_accept
from apar_jax.speculative.tree import TokenTree, TreeError

__all__ = ['Acceptance', 'greedy_accept', 'is_stop', 'typical_accept', 'compact_dense',
           'compact_paged', 'gather_nodes', 'Drafter', 'drafter_metadata', 'load_drafter',
           'save_drafter', 'DrafterMismatchError', 'rejection_accept', 'TokenTree', 'TreeError']
