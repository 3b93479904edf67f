"""Config sections with their defaults, and the presets `configs/*.py` build on (package code, so an
installed package needs no `configs/` folder)."""

from apar_jax.defaults.base import base_config
from apar_jax.defaults.checkout import checkout_root
from apar_jax.defaults.drafter import drafter_train_config, speculative_config
from apar_jax.defaults.engine import engine_config
from apar_jax.defaults.model import model_config
from apar_jax.defaults.training import LORA_TARGETS, distill_defaults, train_defaults

__all__ = ['base_config', 'checkout_root', 'drafter_train_config', 'speculative_config',
           'engine_config', 'model_config', 'LORA_TARGETS', 'distill_defaults', 'train_defaults']
