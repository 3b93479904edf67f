"""Saving and restoring our params with orbax-checkpoint (StandardCheckpointer, one directory each).

`restore_params` reads every array straight into its target sharding (orbax reads only each device's
shard), so a mesh-sharded model never needs a full host copy. The model config can be stored with the
params (orbax custom metadata) so that a converted checkpoint describes itself.
"""

import os
import shutil
from typing import Any, Optional

import jax
import ml_collections
import orbax.checkpoint as ocp

from apar_jax.weights.errors import (CheckpointExistsError, CorruptFileError, ShapeMismatchError,
                                     WeightsNotFoundError)

Params = dict[str, Any]
METADATA_KEY = 'apar_jax'


def save_params(path: str, params: Params, *, model_cfg: Optional[ml_collections.ConfigDict] = None,
                overwrite: bool = False) -> str:
  """Writes `params` (any pytree of arrays) to the new directory `path`; returns its absolute path."""
  path = os.path.abspath(os.fspath(path))
  if os.path.exists(path):
    if not overwrite:
      raise CheckpointExistsError(f'{path} already exists: choose a new directory or pass '
                                  f'overwrite=True to replace it')
    shutil.rmtree(path)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  meta = {METADATA_KEY: {'model_config': model_cfg.to_dict()}} if model_cfg is not None else None
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(path, params, custom_metadata=meta)
    checkpointer.wait_until_finished()
  return path


def _checked_dir(path: str) -> str:
  path = os.path.abspath(os.fspath(path))
  if not os.path.isdir(path):
    what = 'is a file, not' if os.path.exists(path) else 'does not exist; expected'
    raise WeightsNotFoundError(f'{path} {what} an orbax checkpoint directory (as written by '
                               f'save_params or the convert command)')
  return path


def _metadata(checkpointer: ocp.StandardCheckpointer, path: str) -> Any:
  try:
    meta = checkpointer.metadata(path)
  except Exception as e:  # noqa: BLE001 - orbax raises many kinds for a damaged directory
    raise CorruptFileError(f'{path} is not a readable orbax checkpoint ({e!r}): re-run the save or '
                           f'convert') from e
  if meta.item_metadata is None:
    raise CorruptFileError(f'{path} is not an orbax checkpoint (no metadata): pass a directory written '
                           f'by save_params or the convert command')
  return meta


def saved_model_config(path: str) -> Optional[ml_collections.ConfigDict]:
  """The model config stored with the params by `save_params(..., model_cfg=...)`, if any."""
  path = _checked_dir(path)
  with ocp.StandardCheckpointer() as checkpointer:
    custom = _metadata(checkpointer, path).custom_metadata or {}
  stored = custom.get(METADATA_KEY, {}).get('model_config')
  return ml_collections.ConfigDict(stored) if stored is not None else None


def _sharding_tree(shardings: Any, tree: Any) -> Any:
  """A single Sharding applies to every leaf; a pytree must match the checkpoint's structure."""
  if isinstance(shardings, jax.sharding.Sharding):
    return jax.tree.map(lambda _: shardings, tree)
  try:
    return jax.tree.map(lambda _, s: s, tree, shardings)
  except ValueError as e:
    raise ShapeMismatchError(f'target shardings do not match the checkpoint\'s tree ({e}): build them '
                             f'for the same model config') from e


def restore_params(path: str, target_shardings: Any = None, abstract: Any = None) -> Params:
  """Params saved by `save_params`, restored straight into `target_shardings`.

  `target_shardings`: None (first local device), one Sharding for every leaf, or a pytree of them
  (e.g. `apar_jax.sharding.param_shardings(...)`). `abstract`: optional pytree of
  `jax.ShapeDtypeStruct` whose shapes must match the checkpoint and whose dtypes (and shardings, when
  `target_shardings` is None) are used.
  """
  path = _checked_dir(path)
  default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  with ocp.StandardCheckpointer() as checkpointer:
    stored = _metadata(checkpointer, path).item_metadata.tree  # leaves carry shape / dtype
    if abstract is not None:
      try:
        pairs = jax.tree.map(lambda m, a: (m, a), stored, abstract)
      except ValueError as e:
        raise ShapeMismatchError(f'{path}: the checkpoint\'s tree differs from the requested one '
                                 f'({e}): restore with the model config it was saved with') from e
    else:
      pairs = jax.tree.map(lambda m: (m, None), stored)
    is_pair = lambda x: isinstance(x, tuple) and len(x) == 2  # noqa: E731

    def leaf(pair, sharding=None):
      meta, want = pair
      if want is not None and tuple(want.shape) != tuple(meta.shape):
        raise ShapeMismatchError(f'{path}: array {meta.name!r} is stored with shape {meta.shape} '
                                 f'but {tuple(want.shape)} was requested: restore with the model '
                                 f'config it was saved with')
      sharding = sharding or getattr(want, 'sharding', None) or default
      return jax.ShapeDtypeStruct(tuple(meta.shape), want.dtype if want is not None else meta.dtype,
                                  sharding=sharding)

    if target_shardings is None:
      target = jax.tree.map(leaf, pairs, is_leaf=is_pair)
    else:
      target = jax.tree.map(leaf, pairs, _sharding_tree(target_shardings, stored), is_leaf=is_pair)
    try:
      return checkpointer.restore(path, target)
    except Exception as e:  # noqa: BLE001 - tensorstore / orbax errors for missing or damaged data
      raise CorruptFileError(f'{path}: restoring failed ({type(e).__name__}: {str(e)[:300]}); the '
                             f'checkpoint is incomplete or damaged: re-run the save or convert') from e


def saved_shapes(path: str) -> Any:
  """The saved tree with each array replaced by its shape tuple (read from metadata only)."""
  path = _checked_dir(path)
  with ocp.StandardCheckpointer() as checkpointer:
    stored = _metadata(checkpointer, path).item_metadata.tree
  return jax.tree.map(lambda m: tuple(int(s) for s in m.shape), stored)
