"""Mesh shapes and host layout (fake devices), and the decisions of `initialize_from_env_or_flags`."""

import dataclasses

import pytest

from apar_jax import distributed


@dataclasses.dataclass(frozen=True)
class FakeDevice:
  id: int
  process_index: int


def fake_devices(hosts: int, per_host: int) -> list[FakeDevice]:
  # Interleaved on purpose: ordering must come from process_index, not list position.
  return [FakeDevice(h * per_host + i, h) for i in range(per_host) for h in range(hosts)]


def test_resolve_mesh_shape_fills_one_free_axis():
  assert distributed.resolve_mesh_shape(dict(data=-1, fsdp=1, tensor=4), 32) == (8, 1, 4)
  assert distributed.resolve_mesh_shape(dict(data=2, fsdp=-1, tensor=2), 8) == (2, 2, 2)
  assert distributed.resolve_mesh_shape(dict(data=2, fsdp=1, tensor=4), 8) == (2, 1, 4)


@pytest.mark.parametrize('mesh, match', [
    (dict(data=2, fsdp=1, tensor=2), 'needs 4 devices but 8'),
    (dict(data=-1, fsdp=-1, tensor=2), 'at most one -1'),
    (dict(data=-1, fsdp=1, tensor=3), 'does not divide the 8'),
    (dict(data=0, fsdp=1, tensor=8), 'positive'),
])
def test_resolve_mesh_shape_errors(mesh, match):
  with pytest.raises(ValueError, match=match):
    distributed.resolve_mesh_shape(mesh, 8)


def test_order_devices_by_host_puts_each_host_on_its_own_data_rows():
  devices = fake_devices(hosts=4, per_host=4)
  grid = distributed.order_devices_by_host((8, 1, 2), devices)
  for row in range(8):
    assert {d.process_index for d in grid[row].flat} == {row // 2}
  assert [d.id for d in grid[0].flat] == [0, 1]


def test_check_host_layout_rejects_tensor_across_hosts():
  with pytest.raises(ValueError, match=r'fsdp x tensor = 8 must divide the 4 devices of each host.*'
                                       r'--config.mesh.data=8 --config.mesh.fsdp=1 '
                                       r'--config.mesh.tensor=4'):
    distributed.check_host_layout((4, 1, 8), fake_devices(hosts=8, per_host=4))
  distributed.check_host_layout((8, 2, 2), fake_devices(hosts=8, per_host=4))


def test_check_host_layout_rejects_uneven_hosts():
  devices = fake_devices(hosts=2, per_host=4)[:-1]
  with pytest.raises(ValueError, match='different numbers of devices'):
    distributed.check_host_layout((1, 1, 7), devices)


@pytest.fixture
def fresh(monkeypatch):
  """A clean module state and environment; records what would be passed to jax.distributed."""
  for name in ('APAR_COORDINATOR_ADDRESS', 'APAR_NUM_PROCESSES', 'APAR_PROCESS_ID',
               'APAR_LOCAL_DEVICE_IDS', 'APAR_DISTRIBUTED_AUTO'):
    monkeypatch.delenv(name, raising=False)
  monkeypatch.setattr(distributed, '_SETUP', None)
  monkeypatch.setattr(distributed.jax.distributed, 'is_initialized', lambda: False)
  monkeypatch.setattr(distributed, 'on_cloud_tpu_vm', lambda: False)
  calls = []
  monkeypatch.setattr(distributed.jax.distributed, 'initialize',
                      lambda *args, **kwargs: calls.append((args, kwargs)))
  monkeypatch.setattr(distributed, '_set_cpu_collectives', lambda impl: calls.append(('cpu', impl)))
  return calls


def test_single_process_does_nothing(fresh):
  setup = distributed.initialize_from_env_or_flags()
  assert (setup.mode, setup.process_id, setup.num_processes) == ('single', 0, 1)
  assert fresh == []


def test_explicit_settings_from_environment(fresh, monkeypatch):
  monkeypatch.setenv('APAR_COORDINATOR_ADDRESS', '10.0.0.2:8476')
  monkeypatch.setenv('APAR_NUM_PROCESSES', '4')
  monkeypatch.setenv('APAR_PROCESS_ID', '3')
  monkeypatch.setenv('APAR_LOCAL_DEVICE_IDS', '0,1')
  setup = distributed.initialize_from_env_or_flags()
  assert setup == distributed.DistributedSetup('explicit', 3, 4, '10.0.0.2:8476')
  assert fresh == [('cpu', None), (('10.0.0.2:8476', 4, 3),
                                   dict(local_device_ids=[0, 1], initialization_timeout=300))]
  assert distributed.initialize_from_env_or_flags() is setup   # idempotent: no second call
  assert len(fresh) == 2


def test_arguments_override_environment(fresh, monkeypatch):
  monkeypatch.setenv('APAR_NUM_PROCESSES', '4')
  setup = distributed.initialize_from_env_or_flags('h:1', 2, 1, cpu_collectives='none')
  assert (setup.num_processes, setup.process_id) == (2, 1)


def test_num_processes_one_means_single(fresh, monkeypatch):
  monkeypatch.setattr(distributed, 'on_cloud_tpu_vm', lambda: True)
  assert distributed.initialize_from_env_or_flags(num_processes=1).mode == 'single'
  assert fresh == []


@pytest.mark.parametrize('kwargs, match', [
    (dict(coordinator_address='h:1'), r'missing: --num_processes \(or APAR_NUM_PROCESSES\), '
                                      r'--process_id \(or APAR_PROCESS_ID\)'),
    (dict(num_processes=2, process_id=0), r'missing: --coordinator_address'),
    (dict(coordinator_address='h:1', num_processes=2, process_id=2), 'process_id must be in'),
    (dict(coordinator_address='h', num_processes=2, process_id=0), 'host:port'),
    (dict(num_processes='two'), 'must be an integer'),
])
def test_incomplete_or_bad_settings_fail_clearly(fresh, kwargs, match):
  with pytest.raises(ValueError, match=match):
    distributed.initialize_from_env_or_flags(**kwargs)
  assert fresh == []


def test_cloud_tpu_initialises_without_arguments(fresh, monkeypatch):
  monkeypatch.setattr(distributed, 'on_cloud_tpu_vm', lambda: True)
  setup = distributed.initialize_from_env_or_flags()
  assert setup.mode == 'cloud_tpu'
  assert fresh == [((), dict(local_device_ids=None, initialization_timeout=300))]


def test_auto_detection_on_request(fresh, monkeypatch):
  monkeypatch.setenv('APAR_DISTRIBUTED_AUTO', '1')
  assert distributed.initialize_from_env_or_flags().mode == 'auto'
  assert fresh[-1] == ((), dict(local_device_ids=None, initialization_timeout=300))
