"""Weights: Hugging Face safetensors and GGUF importers, orbax save/restore, the default model,
vocabulary growth for the APAR control tokens. See docs/architecture.md for the param tree."""

from apar_jax.weights.convert import convert
from apar_jax.weights.default_model import default_gguf_path
from apar_jax.weights.dispatch import (SOURCES, abstract_params, checkpoint_model_config,
                                       init_random_params, load_params)
from apar_jax.weights.errors import (CheckpointExistsError, ConfigMismatchError, CorruptFileError,
                                     DefaultModelMissingError, MissingTensorError,
                                     ShapeMismatchError, TruncatedFileError,
                                     UnsupportedArchitectureError, UnsupportedQuantizationError,
                                     WeightsError, WeightsNotFoundError)
from apar_jax.weights.gguf_file import supported_types as supported_gguf_types
from apar_jax.weights.gguf_import import load_gguf, model_config_from_gguf, unpermute_qk
from apar_jax.weights.hf_config import model_config_from_hf
from apar_jax.weights.hf_safetensors import load_hf_checkpoint
from apar_jax.weights.orbax_io import restore_params, save_params, saved_model_config
from apar_jax.weights.vocab import fit_vocab, grow_vocab

__all__ = [
    'convert', 'default_gguf_path', 'SOURCES', 'abstract_params', 'checkpoint_model_config',
    'init_random_params', 'load_params', 'CheckpointExistsError', 'ConfigMismatchError',
    'CorruptFileError', 'DefaultModelMissingError', 'MissingTensorError', 'ShapeMismatchError',
    'TruncatedFileError', 'UnsupportedArchitectureError', 'UnsupportedQuantizationError',
    'WeightsError', 'WeightsNotFoundError', 'supported_gguf_types', 'load_gguf',
    'model_config_from_gguf', 'unpermute_qk', 'model_config_from_hf', 'load_hf_checkpoint',
    'restore_params', 'save_params', 'saved_model_config', 'fit_vocab', 'grow_vocab',
]
