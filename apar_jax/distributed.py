"""Multi-host start-up: `jax.distributed` from flags or the environment, and one mesh over all hosts.

Call `initialize_from_env_or_flags()` first thing in a process, before anything touches a jax backend
(`jax.devices()`, `jax.device_put`, any computation). It decides between four cases:

  1. explicit: a coordinator address, process count and process id are given (arguments, or the
     environment variables below). Every process of the job calls it with the same address and count
     and its own id. On CPU, cross-process collectives use gloo.
  2. auto: `APAR_DISTRIBUTED_AUTO=1` and nothing explicit: `jax.distributed.initialize()` with no
     arguments, which lets jax detect Slurm, Open MPI or GKE.
  3. Cloud TPU VM, nothing explicit: `jax.distributed.initialize()` with no arguments; jax reads the
     worker list from the TPU metadata server (single- and multi-host slices alike).
  4. anything else (a laptop, one GPU box, a test, or `APAR_NUM_PROCESSES=1`): nothing happens.

Environment variables (arguments win over them):
  APAR_COORDINATOR_ADDRESS  host:port of process 0, reachable from every process (e.g. 10.0.0.2:8476)
  APAR_NUM_PROCESSES        number of processes in the job (1 = single process, do nothing)
  APAR_PROCESS_ID           this process's id, 0 .. APAR_NUM_PROCESSES - 1
  APAR_LOCAL_DEVICE_IDS     optional, comma-separated local device ids this process may use (GPU)
  APAR_DISTRIBUTED_AUTO     optional, 1 = let jax auto-detect the cluster (Slurm, Open MPI, GKE)

Host-side work in a multi-host job: every process runs the same program on the same inputs (prompts,
params, seeds), because jitted computations over a global mesh must be entered by all processes. Only
process 0 (`is_main_process()`) writes results, checkpoints' metadata and progress to stdout/files;
other processes log to their own stderr. Tokenising and reassembly are cheap and deterministic, so each
process does them itself rather than broadcasting.

`make_global_mesh` builds the (data, fsdp, tensor) mesh with the data axis across hosts and fsdp and
tensor within each host, so the heavy collectives of fsdp and tensor parallelism stay on one host.
"""

import dataclasses
import logging
import math
import os
import shutil
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh

from apar_jax.sharding import MESH_AXES

ENV_COORDINATOR_ADDRESS = 'APAR_COORDINATOR_ADDRESS'
ENV_NUM_PROCESSES = 'APAR_NUM_PROCESSES'
ENV_PROCESS_ID = 'APAR_PROCESS_ID'
ENV_LOCAL_DEVICE_IDS = 'APAR_LOCAL_DEVICE_IDS'
ENV_AUTO = 'APAR_DISTRIBUTED_AUTO'


@dataclasses.dataclass(frozen=True)
class DistributedSetup:
  """What `initialize_from_env_or_flags` did.

  mode: 'single' (nothing), 'explicit', 'auto', 'cloud_tpu', or 'external' (jax.distributed was
  already initialised by someone else).
  """
  mode: str
  process_id: int
  num_processes: int
  coordinator_address: str | None = None


_SETUP: DistributedSetup | None = None


def _int_setting(value: Any, flag: str, env: str) -> int | None:
  if value is None:
    value = os.environ.get(env) or None
  if value is None:
    return None
  try:
    return int(value)
  except (TypeError, ValueError):
    raise ValueError(f'--{flag} / {env} must be an integer, got {value!r}') from None


def _device_ids_setting(value: int | Sequence[int] | str | None) -> list[int] | None:
  if value is None:
    value = os.environ.get(ENV_LOCAL_DEVICE_IDS) or None
  if value is None:
    return None
  if isinstance(value, int):
    return [value]
  if isinstance(value, str):
    try:
      return [int(v) for v in value.split(',') if v.strip()]
    except ValueError:
      raise ValueError(f'{ENV_LOCAL_DEVICE_IDS} must be comma-separated integers, got {value!r}') \
          from None
  return [int(v) for v in value]


def on_cloud_tpu_vm() -> bool:
  """True on a Cloud TPU VM with libtpu installed (jax decides this when it is imported)."""
  try:
    from jax._src import cloud_tpu_init  # private, but it is where jax records the answer
  except ImportError:
    return False
  return bool(getattr(cloud_tpu_init, 'running_in_cloud_tpu_vm', False))


def _set_cpu_collectives(cpu_collectives: str | None) -> None:
  """Cross-process collectives for the CPU backend ('gloo' by default; 'none' leaves jax's choice)."""
  impl = 'gloo' if cpu_collectives is None else cpu_collectives
  if impl != 'none':
    jax.config.update('jax_cpu_collectives_implementation', impl)


def initialize_from_env_or_flags(coordinator_address: str | None = None,
                                 num_processes: int | None = None,
                                 process_id: int | None = None,
                                 local_device_ids: int | Sequence[int] | str | None = None,
                                 cpu_collectives: str | None = None,
                                 initialization_timeout_s: int = 300) -> DistributedSetup:
  """Starts `jax.distributed` when the run has several processes; a no-op otherwise. Idempotent.

  Arguments override the APAR_* environment variables (see the module docstring). `cpu_collectives`:
  'gloo' (default for explicit multi-process runs), 'mpi', or 'none' to leave jax's setting alone.
  """
  global _SETUP
  if _SETUP is not None:
    return _SETUP
  if jax.distributed.is_initialized():
    _SETUP = DistributedSetup('external', jax.process_index(), jax.process_count())
    return _SETUP

  address = coordinator_address or os.environ.get(ENV_COORDINATOR_ADDRESS) or None
  count = _int_setting(num_processes, 'num_processes', ENV_NUM_PROCESSES)
  pid = _int_setting(process_id, 'process_id', ENV_PROCESS_ID)
  device_ids = _device_ids_setting(local_device_ids)

  if count == 1:
    if pid not in (None, 0):
      raise ValueError(f'process_id {pid} is out of range for a single-process run')
    _SETUP = DistributedSetup('single', 0, 1)
    return _SETUP

  if any(v is not None for v in (address, count, pid)):
    missing = [f'--{flag} (or {env})' for value, flag, env in (
        (address, 'coordinator_address', ENV_COORDINATOR_ADDRESS),
        (count, 'num_processes', ENV_NUM_PROCESSES),
        (pid, 'process_id', ENV_PROCESS_ID)) if value is None]
    if missing:
      raise ValueError('a multi-process run needs the coordinator address, the process count and '
                       'this process\'s id; missing: ' + ', '.join(missing))
    if count < 1 or not 0 <= pid < count:
      raise ValueError(f'process_id must be in 0..num_processes-1; got process_id={pid}, '
                       f'num_processes={count}')
    if ':' not in address:
      raise ValueError(f'coordinator address must be host:port, got {address!r}')
    _set_cpu_collectives(cpu_collectives)
    jax.distributed.initialize(address, count, pid, local_device_ids=device_ids,
                               initialization_timeout=initialization_timeout_s)
    _SETUP = DistributedSetup('explicit', pid, count, address)
    return _SETUP

  auto = os.environ.get(ENV_AUTO, '').lower() in ('1', 'true', 'yes')
  if auto or on_cloud_tpu_vm():
    if auto:
      _set_cpu_collectives(cpu_collectives)
    jax.distributed.initialize(local_device_ids=device_ids,
                               initialization_timeout=initialization_timeout_s)
    _SETUP = DistributedSetup('auto' if auto else 'cloud_tpu', jax.process_index(),
                              jax.process_count())
    return _SETUP

  _SETUP = DistributedSetup('single', 0, 1)
  return _SETUP


def is_main_process() -> bool:
  """True on process 0, the one that writes results and progress."""
  return jax.process_index() == 0


def sync_processes(name: str) -> None:
  """A barrier: returns once every process of the job has reached it (at once in a single process).

  `name` must be the same on every process (a mismatch is an error, not a hang)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def agree_with_main(values: np.ndarray) -> np.ndarray:
  """Process 0's `values` on every process (a host array of the same shape and dtype on each): for
  decisions read from files only process 0 may see, e.g. what a resumed job has left to do."""
  if jax.process_count() == 1:
    return values
  from jax.experimental import multihost_utils
  return np.asarray(multihost_utils.broadcast_one_to_all(values))


def remove_directory(path: str) -> None:
  """Removes the directory `path` if it exists: process 0 deletes, every process waits for it.

  The processes of a job share the file system; deleting from each of them races (the slower one
  finds the tree half gone and fails)."""
  if is_main_process() and os.path.exists(path):
    shutil.rmtree(path)
  sync_processes(f'apar_jax.distributed.remove_directory {os.path.abspath(path)}')


def resolve_mesh_shape(mesh_cfg: ml_collections.ConfigDict | dict, num_devices: int
                       ) -> tuple[int, int, int]:
  """(data, fsdp, tensor) from the config; one axis may be -1 = "all the devices the others leave"."""
  shape = [int(mesh_cfg[a]) for a in MESH_AXES]
  free = [i for i, s in enumerate(shape) if s == -1]
  if len(free) > 1 or any(s == 0 or s < -1 for s in shape):
    raise ValueError(f'mesh data/fsdp/tensor = {tuple(shape)}: sizes must be positive, with at most '
                     'one -1 (meaning: whatever the other axes leave)')
  if free:
    rest = math.prod(s for s in shape if s != -1)
    if num_devices % rest:
      raise ValueError(f'mesh {tuple(shape)}: the fixed axes multiply to {rest}, which does not '
                       f'divide the {num_devices} devices')
    shape[free[0]] = num_devices // rest
  if math.prod(shape) != num_devices:
    raise ValueError(
        f'mesh data x fsdp x tensor = {tuple(shape)} needs {math.prod(shape)} devices but '
        f'{num_devices} are available; set --config.mesh.data/fsdp/tensor so that their product is '
        f'{num_devices} (one of them may be -1)')
  return tuple(shape)


def _hosts(devices: Sequence[Any]) -> dict[int, list[Any]]:
  by_process: dict[int, list[Any]] = {}
  for d in devices:
    by_process.setdefault(d.process_index, []).append(d)
  return dict(sorted(by_process.items()))


def check_host_layout(shape: tuple[int, int, int], devices: Sequence[Any]) -> None:
  """fsdp x tensor must fit in one host and every host must hold the same number of devices."""
  hosts = _hosts(devices)
  per_host = {len(v) for v in hosts.values()}
  if len(per_host) != 1:
    raise ValueError(f'hosts hold different numbers of devices: '
                     f'{ {p: len(v) for p, v in hosts.items()} }')
  local = per_host.pop()
  data, fsdp, tensor = shape
  if local % (fsdp * tensor):
    raise ValueError(
        f'mesh {shape}: fsdp x tensor = {fsdp * tensor} must divide the {local} devices of each '
        f'host (fsdp and tensor stay within a host, data spans the {len(hosts)} hosts); e.g. '
        f'--config.mesh.data={len(hosts) * local // math.gcd(local, tensor)} '
        f'--config.mesh.fsdp=1 --config.mesh.tensor={math.gcd(local, tensor)}')


def order_devices_by_host(shape: tuple[int, int, int], devices: Sequence[Any]) -> np.ndarray:
  """Devices as a `shape` array: hosts in process order along data, each host's devices contiguous."""
  ordered = sorted(devices, key=lambda d: (d.process_index, d.id))
  return np.asarray(ordered, dtype=object).reshape(shape)


def global_device_array(shape: tuple[int, int, int], devices: Sequence[Any]) -> np.ndarray:
  """The device array for `shape`, data across hosts; topology-aware within a host when jax can be."""
  hosts = _hosts(devices)
  if len(hosts) == 1:
    return jax.make_mesh(shape, MESH_AXES, axis_types=(AxisType.Auto,) * 3, devices=devices).devices
  check_host_layout(shape, devices)
  per_host = (shape[0] // len(hosts), shape[1], shape[2])
  try:
    # Splitting physical axes is what jax.make_mesh allows on v5e; elsewhere it only adds options.
    return mesh_utils.create_hybrid_device_mesh(per_host, (len(hosts), 1, 1), list(devices),
                                                process_is_granule=True,
                                                allow_split_physical_axes=True)
  except (ValueError, NotImplementedError, AssertionError) as e:
    logging.warning('create_hybrid_device_mesh failed (%s); ordering devices by host instead', e)
    return order_devices_by_host(shape, devices)


def make_global_mesh(mesh_cfg: ml_collections.ConfigDict | dict,
                     devices: Sequence[jax.Device] | None = None) -> Mesh:
  """One (data, fsdp, tensor) mesh over every process's devices, Auto axis types.

  data spans hosts (each host owns a contiguous block of data rows); fsdp and tensor stay within a
  host. Single-process runs get the same mesh as `apar_jax.sharding.make_mesh`.
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = resolve_mesh_shape(mesh_cfg, len(devices))
  device_array = global_device_array(shape, devices)
  return Mesh(device_array, MESH_AXES, axis_types=(AxisType.Auto,) * len(MESH_AXES))


def describe() -> str:
  """One line for logs: process id/count and local/global device counts."""
  return (f'process {jax.process_index()}/{jax.process_count()}: {jax.local_device_count()} local '
          f'{jax.default_backend()} devices, {jax.device_count()} in all')

