"""The engine's slots sharded over the mesh's `data` axis: one independent engine per data shard.

Every leaf of the device state carries a leading shard axis `[D, ...]` (D = `mesh.shape['data']`, 1
without a mesh). Shard d has its own KV page pool, slots and request table and lives on mesh row d
(the params are replicated over `data` and split over fsdp/tensor within the row). The capacities in
`config.engine` are per shard, so a mesh with data = D holds D times the slots and pages of one shard.

The per-shard functions (`step.decode_step`, `prefill.admit`, ...) are written for one shard;
`per_shard` lifts one to the stacked state. With D = 1 it drops and restores the shard axis (the
program is the single-engine one). With D > 1 it is a `vmap` whose shard axis XLA partitions over
`data` (`spmd_axis_name`). Not a per-shard `shard_map`: every device must run the same control flow
(the partitioner's collectives within a row rendezvous with all devices on CPU), so the decode loop
runs while any shard has an unfinished branch, idle shards take empty steps, and a `lax.cond` inside a
step whose predicate differs per shard computes both branches; the ones known at the step's start
(greedy or sampled) take one predicate for all shards (`step_hints`) and stay real branches. Nothing
else crosses shards inside a chunk; the host summary is gathered once per chunk (`replicated_fn`).
"""

from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from apar_jax.engine.device.spec_config import SpecConfig
from apar_jax.engine.device.spec_state import init_spec_slots
from apar_jax.engine.device.state import Capacities, EngineState, init_state
from apar_jax.sharding import fit_spec

DATA_AXIS, TENSOR_AXIS = 'data', 'tensor'


def num_shards(mesh: Optional[Mesh]) -> int:
  """Data shards of an engine on `mesh` (1 without one)."""
  return int(mesh.shape[DATA_AXIS]) if mesh is not None and DATA_AXIS in mesh.shape else 1


def per_shard(fn: Callable, shards: int, stacked: tuple[bool, ...]) -> Callable:
  """Lifts `fn` (one shard's arguments -> one shard's result pytree) to stacked arguments.

  `stacked[i]` says whether argument i carries the shard axis (state, per-shard host inputs) or is
  shared by every shard (params, step counts). The result is stacked.
  """
  if shards > 1:
    return jax.vmap(fn, in_axes=tuple(0 if s else None for s in stacked), spmd_axis_name=DATA_AXIS)

  def squeezed(*args):
    args = [jax.tree.map(lambda x: x[0], a) if s else a for a, s in zip(args, stacked)]
    return jax.tree.map(lambda x: x[None], fn(*args))
  return squeezed


def stack(tree: Any, shards: int) -> Any:
  """`tree` repeated along a new leading shard axis."""
  return jax.tree.map(lambda x: jnp.broadcast_to(x[None], (shards,) + x.shape), tree)


def empty_state(caps: Capacities, model_cfg: Any, spec: Optional[SpecConfig],
                shards: int) -> EngineState:
  """An empty stacked state `[D, ...]`: every slot FREE, every page free (speculative modes: `spec`
  slots too)."""
  one = init_state(caps, model_cfg)
  if spec is not None:
    one = one.replace(spec=init_spec_slots(caps, spec, int(model_cfg.vocab_size)))
  return stack(one, shards)


def state_shardings(abstract: EngineState, mesh: Optional[Mesh], shards: int) -> Any:
  """Where the stacked state lives (a pytree of NamedShardings, None without a multi-device mesh):
  the shard axis over `data` (D > 1), the KV pools' heads over `tensor` when it divides them, the
  rest replicated within a shard."""
  if mesh is None or mesh.size == 1:
    return None
  lead = DATA_AXIS if shards > 1 else None
  plain = lambda x: NamedSharding(mesh, PartitionSpec(lead))  # noqa: E731
  kv_spec = PartitionSpec(lead, None, None, TENSOR_AXIS, None)  # [D, P + 1, page, Hkv, hd]
  kv = lambda x: NamedSharding(mesh, fit_spec(kv_spec, x.shape, mesh))  # noqa: E731
  return jax.tree.map(plain, abstract.replace(caches=())).replace(
      caches=jax.tree.map(kv, abstract.caches))


def replicated_fn(fn: Callable, mesh: Optional[Mesh]) -> Callable:
  """`fn` jitted with outputs replicated on every device, so every process can read them (a
  data-sharded state is split across hosts: this gathers the small arrays `fn` selects)."""
  if mesh is None or mesh.size == 1:
    return jax.jit(fn)
  return jax.jit(fn, out_shardings=NamedSharding(mesh, PartitionSpec()))
