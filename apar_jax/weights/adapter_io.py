"""Saving and loading LoRA adapters: one orbax directory, the spec in its custom metadata."""

import dataclasses
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from apar_jax import distributed
from apar_jax.weights.lora import Adapter, LoraSpec

METADATA_KEY = 'apar_jax_adapter'


def save_adapter(path: str, adapter: Adapter, overwrite: bool = True) -> str:
  """Writes the adapter to the directory `path` (replaced when `overwrite`); returns its abs path."""
  path = os.path.abspath(path)
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f'{path} exists: choose a new directory or pass overwrite=True')
  distributed.remove_directory(path)  # once for a multi-process job, which then saves together
  os.makedirs(os.path.dirname(path), exist_ok=True)
  spec = dataclasses.asdict(adapter.spec)
  weights = jax.tree.map(lambda x: np.asarray(jax.device_get(x)), adapter.weights)
  with ocp.StandardCheckpointer() as ckpt:
    ckpt.save(path, weights, custom_metadata={METADATA_KEY: spec})
    ckpt.wait_until_finished()
  return path


def load_adapter(path: str) -> Adapter:
  """The adapter saved at `path` (arrays on the default device)."""
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise FileNotFoundError(f'adapter directory {path} does not exist: train one with '
                            '`python -m apar_jax train` or fix the adapter path in the config')
  with ocp.StandardCheckpointer() as ckpt:
    meta = ckpt.metadata(path)
    custom = (meta.custom_metadata or {}).get(METADATA_KEY)
    if custom is None:
      raise ValueError(f'{path} is an orbax checkpoint but not an adapter (no {METADATA_KEY} '
                       'metadata)')
    weights = ckpt.restore(path)
  spec = LoraSpec(rank=int(custom['rank']), alpha=float(custom['alpha']),
                  targets=tuple(custom['targets']), token_ids=tuple(int(i) for i in custom['token_ids']))
  return Adapter(spec, weights)


def adapter_bytes(path: str) -> int:
  """Total size of the files of a saved adapter."""
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)
