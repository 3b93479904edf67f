"""Logical axis names -> mesh axes (data, fsdp, tensor), and the mesh itself.

Every parameter and activation of the model carries logical axis names (see apar_jax/model); the rules
in `config.sharding_rules` map them to mesh axes. Axes whose size does not divide a dimension are left
replicated for that array, so one rule set serves every model shape.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax
import ml_collections
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

MESH_AXES = ('data', 'fsdp', 'tensor')


def make_mesh(mesh_cfg: ml_collections.ConfigDict, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A (data, fsdp, tensor) mesh over `devices` (default: all). Sizes must multiply to the count."""
  devices = list(jax.devices() if devices is None else devices)
  shape = tuple(int(mesh_cfg[a]) for a in MESH_AXES)
  if int(np.prod(shape)) != len(devices):
    raise ValueError(
        f'mesh data x fsdp x tensor = {shape} needs {int(np.prod(shape))} devices but {len(devices)} '
        f'are available; set --config.mesh.data/fsdp/tensor so that their product is {len(devices)}')
  return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices)


def logical_rules(config: ml_collections.ConfigDict) -> tuple[tuple[str, Any], ...]:
  """The config's rules as the tuple Flax's logical partitioning helpers expect."""
  return tuple((name, axes) for name, axes in config.sharding_rules)


def fit_spec(spec: PartitionSpec, shape: Sequence[int], mesh: Mesh) -> PartitionSpec:
  """Drops mesh axes from dimensions they do not divide evenly (those stay replicated)."""
  fitted = []
  for dim, axes in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    names = () if axes is None else ((axes,) if isinstance(axes, str) else tuple(axes))
    size = int(np.prod([mesh.shape[a] for a in names])) if names else 1
    fitted.append(axes if names and dim % size == 0 else None)
  return PartitionSpec(*fitted)


def param_shardings(model: nn.Module, config: ml_collections.ConfigDict, mesh: Mesh,
                    init_args: Sequence[Any]) -> Any:
  """NamedShardings for the model's params, from their logical axes and the config's rules.

  `init_args` are example inputs for `model.init` (only shapes are traced, nothing is allocated).
  """
  abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), *init_args))
  logical_specs = nn.get_partition_spec(abstract)['params']
  shapes = jax.tree.map(lambda x: x.shape, nn.unbox(abstract)['params'])
  rules = logical_rules(config)
  mesh_specs = jax.tree.map(
      lambda spec: nn.logical_to_mesh_axes(tuple(spec), rules), logical_specs,
      is_leaf=lambda x: isinstance(x, PartitionSpec))
  return jax.tree.map(
      lambda spec, shape: NamedSharding(mesh, fit_spec(spec, shape, mesh)), mesh_specs, shapes,
      is_leaf=lambda x: isinstance(x, PartitionSpec))


def shard_params(params: Any, shardings: Any) -> Any:
  """Places (or re-places) params with the given shardings."""
  return jax.tree.map(jax.device_put, params, shardings)


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())
