"""The foundation's decoding loop (dense KV cache) used as the reference greedy for the engine."""

from apar_jax.generate.dense_loop import DecodeState, DenseGenerator, SamplingParams

__all__ = ['DecodeState', 'DenseGenerator', 'SamplingParams']
