"""Fine-tuning for APAR: LoRA (or full) training on packed trees, checkpoints, adapters.

    adapter = load_adapter(path)               # what the engine loads
    params = apply_adapter(params, adapter)    # W + (alpha / r) * A @ B, plus the [Fork]/[Child] rows
    result = train(config)                     # config.train (see defaults.py)
"""

from apar_jax.weights.adapter_io import load_adapter, save_adapter
from apar_jax.weights.lora import Adapter, LoraSpec, apply_adapter, init_adapter

__all__ = ['Adapter', 'LoraSpec', 'apply_adapter', 'init_adapter', 'load_adapter', 'save_adapter']
