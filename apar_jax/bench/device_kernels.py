"""Each attention kernel executed on the backend at hand, against the pure-jnp reference.

On a TPU or GPU the Pallas kernel for that backend is compiled for real (`impl='pallas'`); on a CPU
the TPU kernel runs in interpret mode. Each case reports the largest error, the tolerance that fp32
/ bf16 rounding allows (`apar_jax.testing.attention_tolerance`) and the time per call of both.
"""

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import pallas_kernels as pk
from apar_jax.testing.attention_tolerance import attention_tolerance

SCALE = 0.125  # 1 / sqrt(head_dim 64)


@dataclasses.dataclass(frozen=True)
class KernelShape:
  """One kernel call's static shape (SmolLM2 heads by default: 9 query, 3 KV, D 64)."""
  name: str  # 'branch decode', 'branch verify' or 'packed tree'
  slots: int  # slots (branch attention) or rows (packed tree)
  q_len: int  # query block per slot, or tokens per packed row
  context: int = 0  # committed tokens per slot (branch attention)
  q_heads: int = 9
  kv_heads: int = 3
  head_dim: int = 64
  page_size: int = 16


@dataclasses.dataclass(frozen=True)
class KernelResult:
  name: str
  dtype: str
  impl: str
  max_error: float
  tolerance: float
  kernel_ms: float
  reference_ms: float

  @property
  def ok(self) -> bool:
    return bool(np.isfinite(self.max_error) and self.max_error <= self.tolerance)


def shapes(smoke: bool) -> list[KernelShape]:
  if smoke:
    return [KernelShape('branch decode', 2, 1, context=40, q_heads=4, kv_heads=2, head_dim=16),
            KernelShape('branch verify', 2, 4, context=40, q_heads=4, kv_heads=2, head_dim=16),
            KernelShape('packed tree', 1, 48, q_heads=4, kv_heads=2, head_dim=16)]
  return [KernelShape('branch decode', 32, 1, context=2048),
          KernelShape('branch verify', 32, 16, context=2048),
          KernelShape('packed tree', 8, 1024)]


def kernel_impl() -> str:
  """The dispatcher's `impl` that runs a compiled kernel here, or the interpreted TPU kernel."""
  return 'pallas_interpret' if jax.default_backend() == 'cpu' else 'pallas'


def _time_ms(fn: Callable[[], jax.Array], repeats: int) -> tuple[jax.Array, float]:
  out = jax.block_until_ready(fn())  # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t0)
  return out, 1000 * float(np.median(times))


def branch_inputs(shape: KernelShape, dtype: str, rng: np.random.Generator):
  """(q, k_pages, v_pages, page_tables, lengths, block_mask) with every slot on its own pages."""
  pages_per_slot = -(-(shape.context + shape.q_len) // shape.page_size)
  num_pages = shape.slots * pages_per_slot
  kv = (num_pages, shape.page_size, shape.kv_heads, shape.head_dim)
  q = rng.standard_normal((shape.slots, shape.q_len, shape.q_heads, shape.head_dim))
  tables = rng.permutation(num_pages).reshape(shape.slots, pages_per_slot)
  lengths = np.full((shape.slots,), shape.context)
  # A verify block is a token tree: node i sees itself and its parent chain (here a binary tree).
  mask = np.zeros((shape.q_len, shape.q_len), bool)
  for i in range(shape.q_len):
    node = i
    while node >= 0:
      mask[i, node] = True
      node = (node - 1) // 2 if node > 0 else -1
  return (jnp.asarray(q, dtype), jnp.asarray(rng.standard_normal(kv), dtype),
          jnp.asarray(rng.standard_normal(kv), dtype), jnp.asarray(tables, jnp.int32),
          jnp.asarray(lengths, jnp.int32),
          jnp.asarray(np.broadcast_to(mask, (shape.slots,) + mask.shape)))


def packed_tree_inputs(shape: KernelShape, dtype: str, rng: np.random.Generator):
  """(q, k, v, branch_ids, branch_parent, fork_index): per row, a root writing a list's titles and
  one child per title writing its details, forked at the title's last token (APAR's layout)."""
  t, children = shape.q_len, 7
  root_len = t // 4
  child_len = (t - root_len) // children
  ids = np.full((t,), -1)
  ids[:root_len] = 0
  for c in range(children):
    ids[root_len + c * child_len: root_len + (c + 1) * child_len] = c + 1
  parent = np.array([-1] + [0] * children)
  fork = np.array([-1] + [(c + 1) * root_len // (children + 1) for c in range(children)])
  rows = lambda x: np.broadcast_to(x, (shape.slots,) + x.shape)  # noqa: E731
  qkv = [rng.standard_normal((shape.slots, t, h, shape.head_dim))
         for h in (shape.q_heads, shape.kv_heads, shape.kv_heads)]
  return tuple(jnp.asarray(x, dtype) for x in qkv) + tuple(
      jnp.asarray(rows(x), jnp.int32) for x in (ids, parent, fork))


def check_kernel(shape: KernelShape, dtype: str, *, impl: str, repeats: int,
                 seed: int = 0) -> KernelResult:
  """The kernel `impl` and the reference on the same inputs: error, tolerance and times."""
  rng = np.random.default_rng(seed)
  if shape.name == 'packed tree':
    args = packed_tree_inputs(shape, dtype, rng)
    call = lambda which: jax.jit(lambda *a: pk.packed_tree_attention(  # noqa: E731
        *a, scale=SCALE, impl=which, max_depth=2))
  else:
    args = branch_inputs(shape, dtype, rng)
    call = lambda which: jax.jit(lambda *a: pk.branch_attention(  # noqa: E731
        *a, scale=SCALE, impl=which))
  kernel, reference = call(impl), call('reference')
  got, kernel_ms = _time_ms(lambda: kernel(*args), repeats)
  want, reference_ms = _time_ms(lambda: reference(*args), repeats)
  got, want = (np.asarray(x.astype(jnp.float32), np.float64) for x in (got, want))
  error = float(np.max(np.abs(got - want))) if np.all(np.isfinite(got)) else float('inf')
  tolerance = attention_tolerance(*args[:3], scale=SCALE, dtype=dtype, values=got.size)
  return KernelResult(shape.name, dtype, pk.resolve_impl(impl), error, tolerance, kernel_ms,
                      reference_ms)


def check_kernels(*, smoke: bool, repeats: int, impl: str | None = None) -> list[KernelResult]:
  impl = impl or kernel_impl()
  return [check_kernel(shape, dtype, impl=impl, repeats=repeats)
          for shape in shapes(smoke) for dtype in ('float32', 'bfloat16')]
