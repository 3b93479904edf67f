"""Kernel figures: `python -m apar_jax.bench.kernels` (prints markdown to stdout).

For decode (Q = 1) and verify (Q = 16 tree) shapes of SmolLM2-135M and a 7B LLaMA, 32 slots, 16-token
pages, 4k-token page tables and ragged lengths (mean ~2k):
- KV bytes read and FLOPs per call of each implementation (counted from the algorithm, not measured);
- the reference's CPU time against plain dense attention over a contiguous cache of the same length
  (measured here, fp32, same run, so the ratio is what to read);
- the TPU / GPU block sizes and a bandwidth-bound roofline estimate on a TPU v5e and an H100.
Also the share of (query block, key block) pairs the packed-tree kernels visit on an APAR-like tree.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from pallas_kernels.branch_attention.block_sizes import gpu_block_sizes, tpu_block_sizes
from pallas_kernels.branch_attention.reference import branch_attention_reference
from pallas_kernels.packed_tree.block_sizes import gpu_block_sizes as tree_gpu_block_sizes
from pallas_kernels.packed_tree.block_sizes import tpu_block_sizes as tree_tpu_block_sizes
from pallas_kernels.packed_tree.block_sparsity import block_lists
from pallas_kernels.packed_tree.metadata import build_metadata

# Public datasheet figures (dense bf16), used only for the stated estimate.
HARDWARE = {"TPU v5e": (819e9, 197e12), "H100 SXM": (3.35e12, 989e12)}


@dataclasses.dataclass(frozen=True)
class Shape:
  model: str
  hq: int
  hkv: int
  d: int
  q_len: int
  slots: int = 32
  page_size: int = 16
  context: int = 4096

  @property
  def mode(self) -> str:
    return "decode" if self.q_len == 1 else f"verify Q={self.q_len}"

  def lengths(self) -> np.ndarray:
    """Ragged committed lengths from ~128 to the capacity, mean ~2k."""
    top = self.context - self.q_len
    return np.array([(s + 1) * top // self.slots for s in range(self.slots)], np.int64)


SHAPES = [Shape("SmolLM2-135M", 9, 3, 64, 1), Shape("SmolLM2-135M", 9, 3, 64, 16),
          Shape("7B", 32, 32, 128, 1), Shape("7B", 32, 32, 128, 16)]


def costs(shape: Shape, itemsize: int) -> dict[str, tuple[float, float]]:
  """Per implementation: (KV bytes read, FLOPs) of one call."""
  s, q, d, ps = shape.slots, shape.q_len, shape.d, shape.page_size
  g = shape.hq // shape.hkv
  token_bytes = 2 * shape.hkv * d * itemsize  # K and V of one position, all kv heads
  seen = shape.lengths() + q
  out = {"useful": (float(seen.sum() * token_bytes), float(4 * q * shape.hq * d * seen.sum()))}
  # Reference: gathers every page of every table (and XLA writes then re-reads the gathered copy).
  cap = shape.context
  out["reference"] = (float(s * cap * token_bytes), float(4 * s * q * shape.hq * cap * d))
  tpu = tpu_block_sizes(num_kv_heads=shape.hkv, head_dim=d, page_size=ps,
                        pages_per_slot=cap // ps, itemsize=itemsize)
  pages = np.ceil(seen / ps) * ps  # page-granular: pages past L + Q are not copied
  blocks = np.ceil(seen / (tpu.pages_per_block * ps)) * tpu.pages_per_block * ps  # computed keys
  hb = tpu.heads_per_block
  tpu_flops = 4 * (hb * q * g) * (hb * d) * blocks.sum() * (shape.hkv // hb)
  out["pallas TPU"] = (float(pages.sum() * token_bytes), float(tpu_flops))
  gpu = gpu_block_sizes(q_len=q, group=g, page_size=ps, pages_per_slot=cap // ps)
  gblocks = np.ceil(seen / (gpu.pages_per_block * ps)) * gpu.pages_per_block * ps
  out["pallas GPU"] = (float(gblocks.sum() * token_bytes),
                       float(4 * gpu.rows * d * gblocks.sum() * shape.hkv))
  return out


def _dense_attention(q, k, v, lengths, scale):
  """Plain masked attention over a contiguous [S, C, Hkv, D] cache (causal block)."""
  s, q_len, hq, d = q.shape
  c, hkv = k.shape[1], k.shape[2]
  qg = q.reshape(s, q_len, hkv, hq // hkv, d)
  logits = jnp.einsum("sqhgd,schd->shgqc", qg, k) * scale
  pos = jnp.arange(c)[None, None, :]
  limit = lengths[:, None, None] + jnp.arange(q_len)[None, :, None]  # [S, Q, 1]
  logits = jnp.where((pos <= limit)[:, None, None], logits, -jnp.inf)
  probs = jax.nn.softmax(logits, axis=-1)
  return jnp.einsum("shgqc,schd->sqhgd", probs, v).reshape(s, q_len, hq, d)


def _median_times(calls, repeats: int) -> list[float]:
  """Median seconds of each (fn, args), the calls interleaved so machine noise hits all alike."""
  for fn, args in calls:
    jax.block_until_ready(fn(*args))
  times = [[] for _ in calls]
  for _ in range(repeats):
    for i, (fn, args) in enumerate(calls):
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[i].append(time.perf_counter() - start)
  return [float(np.median(t)) for t in times]


def cpu_times(shape: Shape, repeats: int) -> tuple[float, float]:
  """(reference, dense contiguous) seconds per call on this CPU, fp32."""
  rng = np.random.default_rng(0)
  s, ps, cap = shape.slots, shape.page_size, shape.context
  pps = cap // ps
  kv = rng.standard_normal((s * pps, ps, shape.hkv, shape.d), np.float32)
  k_pages, v_pages = jnp.asarray(kv), jnp.asarray(kv[::-1].copy())
  tables = jnp.asarray(rng.permutation(s * pps).reshape(s, pps).astype(np.int32))
  q = jnp.asarray(rng.standard_normal((s, shape.q_len, shape.hq, shape.d), np.float32))
  lengths = jnp.asarray(shape.lengths().astype(np.int32))
  scale = shape.d ** -0.5
  ref = jax.jit(functools.partial(branch_attention_reference, scale=scale))
  k_cache = k_pages[tables].reshape(s, cap, shape.hkv, shape.d)
  v_cache = v_pages[tables].reshape(s, cap, shape.hkv, shape.d)
  dense = jax.jit(functools.partial(_dense_attention, scale=scale))
  t_ref, t_dense = _median_times(
      [(ref, (q, k_pages, v_pages, tables, lengths, None)), (dense, (q, k_cache, v_cache, lengths))],
      repeats)
  return t_ref, t_dense


def tree_sparsity() -> str:
  """Visited block pairs on an APAR-like packed tree vs causal dense blocks."""
  # Root of 1,024 tokens with 12 [Fork]s, 12 children of ~250 tokens each, padded to 4,096 rows.
  t, children, child_len = 4096, 12, 250
  ids = np.full(t, -1, np.int32)
  ids[:1024] = 0
  forks = np.linspace(60, 1000, children).astype(np.int32)
  for c in range(children):
    ids[1024 + c * child_len: 1024 + (c + 1) * child_len] = c + 1
  parent = np.array([-1] + [0] * children, np.int32)
  fork = np.concatenate([[-1], forks]).astype(np.int32)
  meta = build_metadata(jnp.asarray(ids[None]), jnp.asarray(parent[None]), jnp.asarray(fork[None]), 2)
  lines = []
  for name, sizes in (("TPU", tree_tpu_block_sizes(seq_len=t, group=3)),
                      ("GPU", tree_gpu_block_sizes(seq_len=t))):
    lists = block_lists(meta, jnp.asarray(ids[None]), sizes.block_q, sizes.block_k)
    visited = int(lists.kv_count.sum())
    nq, nk = t // sizes.block_q, t // sizes.block_k
    causal = sum(min(nk, math.ceil((i + 1) * sizes.block_q / sizes.block_k)) for i in range(nq))
    lines.append(f"| {name} | {sizes.block_q} x {sizes.block_k} | {visited} | {causal} | "
                 f"{nq * nk} | {visited / causal:.2f} |")
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--skip_cpu", action="store_true", help="skip the CPU timings")
  args = parser.parse_args()
  print(f"jax {jax.__version__}, backend {jax.default_backend()}\n")
  print("## Bytes of KV read and FLOPs per call (bf16 KV, 32 slots, 4k tables, mean length ~2k)\n")
  print("| model | mode | impl | KV MB read | GFLOP | v5e est. us | H100 est. us |")
  print("|---|---|---|---:|---:|---:|---:|")
  for shape in SHAPES:
    for impl, (nbytes, flops) in costs(shape, itemsize=2).items():
      est = [max(nbytes / bw, flops / peak) * 1e6 for bw, peak in HARDWARE.values()]
      print(f"| {shape.model} | {shape.mode} | {impl} | {nbytes / 1e6:.1f} | {flops / 1e9:.2f} | "
            f"{est[0]:.0f} | {est[1]:.0f} |")
  print("\n## Block sizes\n")
  print("| model | mode | TPU kv heads / step | TPU pages / block (tokens) | GPU pages / block "
        "(tokens) | GPU query rows | GPU warps |")
  print("|---|---|---:|---:|---:|---:|---:|")
  for shape in SHAPES:
    g = shape.hq // shape.hkv
    tpu = tpu_block_sizes(num_kv_heads=shape.hkv, head_dim=shape.d, page_size=shape.page_size,
                          pages_per_slot=shape.context // shape.page_size, itemsize=2)
    gpu = gpu_block_sizes(q_len=shape.q_len, group=g, page_size=shape.page_size,
                          pages_per_slot=shape.context // shape.page_size)
    print(f"| {shape.model} | {shape.mode} | {tpu.heads_per_block} | {tpu.pages_per_block} "
          f"({tpu.pages_per_block * shape.page_size}) | {gpu.pages_per_block} "
          f"({gpu.pages_per_block * shape.page_size}) | {gpu.rows} | {gpu.num_warps} |")
  print("\n## Packed tree: (query block, key block) pairs visited, APAR-like 4k-row tree\n")
  print("| kernel | block | visited | causal dense | all | visited / causal |")
  print("|---|---|---:|---:|---:|---:|")
  print(tree_sparsity())
  if args.skip_cpu:
    return
  print("\n## Reference on this CPU vs dense attention over a contiguous cache (fp32, median of "
        f"{args.repeats})\n")
  print("| model | mode | reference ms | dense contiguous ms | ratio |")
  print("|---|---|---:|---:|---:|")
  for shape in SHAPES[:2]:
    t_ref, t_dense = cpu_times(shape, args.repeats)
    print(f"| {shape.model} | {shape.mode} | {t_ref * 1e3:.1f} | {t_dense * 1e3:.1f} | "
          f"{t_ref / t_dense:.2f} |")


if __name__ == "__main__":
  main()
