"""`packed_tree_attention`: validates, then runs the reference or a Pallas kernel."""

from __future__ import annotations

import functools

import jax

from pallas_kernels.branch_attention.validate import is_concrete
from pallas_kernels.impl import resolve_impl
from pallas_kernels.interpret_params import tpu_interpret_params
from pallas_kernels.packed_tree import validate
from pallas_kernels.packed_tree.gpu_kernel import packed_tree_attention_gpu
from pallas_kernels.packed_tree.reference import packed_tree_attention_reference
from pallas_kernels.packed_tree.tpu_kernel import packed_tree_attention_tpu


def packed_tree_attention(
    q: jax.Array,  # [B, T, Hq, D]
    k: jax.Array,  # [B, T, Hkv, D]
    v: jax.Array,  # [B, T, Hkv, D]
    branch_ids: jax.Array,  # [B, T] int32: branch of each token, -1 = padding
    branch_parent: jax.Array,  # [B, NB] int32: parent branch, -1 for the root
    fork_index: jax.Array,  # [B, NB] int32: row of the parent's [Fork] token, -1 for the root
    *,
    scale: float,
    soft_cap: float | None = None,
    impl: str = "auto",
    max_depth: int | None = None,
) -> jax.Array:  # [B, T, Hq, D] in q's dtype
  """Attention over all branches of APAR trees packed one tree per row.

  Token i (branch b) sees token j iff j <= i and either branch_ids[j] == b, or branch_ids[j] is an
  ancestor a of b and j <= fork_index[c], c being the child of a on the path to b. Padding tokens
  see nothing and are seen by nobody (their output is zeros). `max_depth` is the number of branch
  levels on the deepest root-to-leaf path, root included (APAR: 2); None means NB, always enough but
  each extra level costs the kernels one more elementwise test per (query, key).
  """
  validate.check_static(q, k, v, branch_ids, branch_parent, fork_index, scale=scale,
                        soft_cap=soft_cap, max_depth=max_depth)
  depth = branch_parent.shape[1] if max_depth is None else max_depth
  if is_concrete(branch_ids, branch_parent, fork_index):
    validate.check_values(branch_ids, branch_parent, fork_index, max_depth=depth)
  which = resolve_impl(impl)
  if which == "pallas_gpu":
    validate.check_gpu_kernel(q)
  return _run(q, k, v, branch_ids, branch_parent, fork_index, scale=float(scale),
              soft_cap=None if soft_cap is None else float(soft_cap), max_depth=depth, which=which)


@functools.partial(jax.jit, static_argnames=("scale", "soft_cap", "max_depth", "which"))
def _run(q, k, v, branch_ids, branch_parent, fork_index, *, scale, soft_cap, max_depth, which):
  """Jitted so that eager callers compile once per shape (a no-op under an outer jit)."""
  args = (q, k, v, branch_ids, branch_parent, fork_index)
  kw = dict(scale=scale, soft_cap=soft_cap, max_depth=max_depth)
  if which == "reference":
    return packed_tree_attention_reference(*args, **kw)
  if which == "pallas_gpu":
    return packed_tree_attention_gpu(*args, **kw)
  interpret = tpu_interpret_params() if which == "pallas_interpret" else False
  return packed_tree_attention_tpu(*args, **kw, interpret=interpret)
