"""Every kernel lowers for TPU (Mosaic) and CUDA (Triton) at realistic shapes, without hardware.

`jax.export(..., platforms=[...])` runs the Pallas -> Mosaic / Triton lowering on this CPU machine: it
rejects illegal block shapes (Mosaic's 8 x 128 rule), unsupported primitives and non-power-of-2
Triton tiles. It does not run the hardware compilers behind the custom calls.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import pytest

from pallas_kernels.branch_attention.gpu_kernel import branch_attention_gpu
from pallas_kernels.branch_attention.tpu_kernel import branch_attention_tpu
from pallas_kernels.packed_tree.gpu_kernel import packed_tree_attention_gpu
from pallas_kernels.packed_tree.tpu_kernel import packed_tree_attention_tpu

# Pallas Triton calls carry no serialisation-compatibility guarantee; lowering is what we check.
_TRITON = jax.export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")
_TARGET = {"tpu": "tpu_custom_call", "cuda": "__gpu$xla.gpu.triton"}

# (name, q heads, kv heads, head_dim): SmolLM2-135M and a 7B LLaMA.
MODELS = [("smollm2", 9, 3, 64), ("7b", 32, 32, 128)]


def _sds(shape, dtype):
  return jax.ShapeDtypeStruct(shape, dtype)


def _export(fn, platform, args):
  exported = jax.export.export(jax.jit(fn), platforms=[platform],
                               disabled_checks=[_TRITON] if platform == "cuda" else [])(*args)
  text = exported.mlir_module()
  assert _TARGET[platform] in text
  return exported


@pytest.mark.parametrize("platform", ["tpu", "cuda"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m[0])
@pytest.mark.parametrize("q_len", [1, 16], ids=["decode", "verify"])
def test_branch_attention_lowers(platform, model, q_len):
  _, hq, hkv, d = model
  slots, page_size, context = 32, 16, 4096
  pages_per_slot = context // page_size
  pages = slots * pages_per_slot
  args = [_sds((slots, q_len, hq, d), jnp.bfloat16),
          _sds((pages, page_size, hkv, d), jnp.bfloat16),
          _sds((pages, page_size, hkv, d), jnp.bfloat16),
          _sds((slots, pages_per_slot), jnp.int32), _sds((slots,), jnp.int32),
          _sds((slots, q_len, q_len), jnp.bool_)]
  kernel = branch_attention_tpu if platform == "tpu" else branch_attention_gpu
  exported = _export(functools.partial(kernel, scale=d ** -0.5, soft_cap=50.0), platform, args)
  assert exported.out_avals[0].shape == (slots, q_len, hq, d)


@pytest.mark.parametrize("platform", ["tpu", "cuda"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m[0])
def test_packed_tree_attention_lowers(platform, model):
  _, hq, hkv, d = model
  batch, seq, branches = (4, 4096, 32) if hkv < hq else (1, 4096, 32)
  args = [_sds((batch, seq, hq, d), jnp.bfloat16), _sds((batch, seq, hkv, d), jnp.bfloat16),
          _sds((batch, seq, hkv, d), jnp.bfloat16), _sds((batch, seq), jnp.int32),
          _sds((batch, branches), jnp.int32), _sds((batch, branches), jnp.int32)]
  kernel = packed_tree_attention_tpu if platform == "tpu" else packed_tree_attention_gpu
  exported = _export(functools.partial(kernel, scale=d ** -0.5, max_depth=2), platform, args)
  assert exported.out_avals[0].shape == (batch, seq, hq, d)
