"""LLaMA-family decoder and the attention specs that let one forward serve every decoding mode."""

from apar_jax.model.attention_spec import (CausalSpec, DenseCache, DenseCacheSpec, PagedCache,
                                           PagedSpec, dense_attention)
from apar_jax.model.transformer import ModelOutput, Transformer, build_model

__all__ = ['CausalSpec', 'DenseCache', 'DenseCacheSpec', 'PagedCache', 'PagedSpec', 'dense_attention',
           'ModelOutput', 'Transformer', 'build_model']
