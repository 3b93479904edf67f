"""Which implementation an attention call runs: the `impl` switch shared by every kernel family."""

from __future__ import annotations

import jax

IMPLS = ("auto", "reference", "pallas", "pallas_interpret")

# Concrete implementations that `resolve_impl` can return.
RESOLVED = ("reference", "pallas_tpu", "pallas_gpu", "pallas_interpret")


def resolve_impl(impl: str = "auto", backend: str | None = None) -> str:
  """Maps a user-facing `impl` to the implementation that will run.

  `auto`: the pure-jnp reference on CPU, the Pallas TPU kernel on TPU, the Pallas GPU kernel on GPU.
  `reference`: the pure-jnp reference anywhere. `pallas`: the kernel for the current backend (error on
  CPU, where Pallas only interprets). `pallas_interpret`: the TPU kernel in interpret mode, anywhere.

  Args:
    impl: one of `IMPLS`.
    backend: `jax.default_backend()` when None; 'cpu', 'tpu', 'gpu' (or 'cuda' / 'rocm').

  Returns:
    One of `RESOLVED`.
  """
  if impl not in IMPLS:
    raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
  backend = (backend or jax.default_backend()).lower()
  if backend in ("cuda", "rocm"):
    backend = "gpu"
  if impl == "reference" or impl == "pallas_interpret":
    return impl
  if backend == "tpu":
    return "pallas_tpu"
  if backend == "gpu":
    return "pallas_gpu"
  if impl == "pallas":
    raise ValueError(
        f"impl='pallas' needs a TPU or GPU backend, this one is {backend!r}; "
        "use impl='pallas_interpret' to run the TPU kernel in interpret mode on CPU, "
        "or impl='reference'")
  return "reference"
