"""The attention spec of packed-tree training rows: `pallas_kernels.packed_tree_attention` per layer.

Passed to `Transformer.apply` like any other spec (see apar_jax/model/attention_spec.py); no cache.
"""

from typing import Any, Optional

import flax.struct
import jax


def _packed_tree_attention():
  """The kernel entry point (one place to swap the implementation)."""
  from pallas_kernels import packed_tree_attention
  return packed_tree_attention


@flax.struct.dataclass
class PackedTreeSpec:
  """Branch-local attention inside packed rows (see apar_jax/apar_data/packing.py)."""
  branch_ids: jax.Array  # [B, T] int32, -1 = padding
  branch_parent: jax.Array  # [B, NB] int32, -1 = root / unused
  fork_index: jax.Array  # [B, NB] int32
  max_depth: int = flax.struct.field(pytree_node=False, default=2)  # branch levels, root included
  impl: str = flax.struct.field(pytree_node=False, default='auto')
  soft_cap: Optional[float] = flax.struct.field(pytree_node=False, default=None)

  def attend(self, q: jax.Array, k: jax.Array, v: jax.Array, cache: Any, scale: float):
    """q [B, T, Hq, D], k/v [B, T, Hkv, D] -> ([B, T, Hq, D], cache unchanged)."""
    out = _packed_tree_attention()(q, k, v, self.branch_ids, self.branch_parent, self.fork_index,
                                   scale=scale, soft_cap=self.soft_cap, impl=self.impl,
                                   max_depth=self.max_depth)
    return out, cache
