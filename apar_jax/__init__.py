"""apar-jax: APAR branch-parallel and speculative decoding for LLaMA-family models in JAX/Flax."""

__version__ = "0.1.0"
