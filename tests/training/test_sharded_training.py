"""A training step on 8 fake CPU devices (data x fsdp x tensor = 2 x 2 x 2) matches one device."""

import json
import os
import subprocess
import sys
import textwrap

from child_env import child_env

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent('''
    import json, os, sys
    devices = int(sys.argv[2])
    os.environ['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
    import jax, numpy as np
    from training_fixtures import tiny_train_config, write_sharegpt
    from apar_jax.training.trainer import train
    assert jax.device_count() == devices
    out = {}
    for method in ('lora', 'full'):
      tmp = os.path.join(sys.argv[3], method)
      os.makedirs(tmp, exist_ok=True)
      data = write_sharegpt(os.path.join(tmp, 'data.jsonl'))
      cfg = tiny_train_config(tmp, data, batch_size=4, total_steps=2, method=method, export_dir='')
      if devices == 8:
        cfg.mesh.update(data=2, fsdp=2, tensor=2)
      result = train(cfg, progress=False)
      losses = [json.loads(l)['loss'] for l in open(os.path.join(tmp, 'logs', 'metrics.jsonl'))]
      leaves = jax.tree.leaves(result.state['trainable'])
      out[method] = {'losses': losses, 'sums': [float(np.abs(np.asarray(x)).sum()) for x in leaves]}
    print(json.dumps(out))
''')


def _start(devices: int, tmp: str) -> subprocess.Popen:
  env = child_env()
  return subprocess.Popen([sys.executable, '-c', SCRIPT, REPO_ROOT, str(devices), tmp],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _result(proc: subprocess.Popen) -> dict:
  out, err = proc.communicate(timeout=600)
  assert proc.returncode == 0, err[-3000:]
  return json.loads(out.strip().splitlines()[-1])


def test_eight_devices_match_one(tmp_path):
  procs = _start(1, str(tmp_path / 'one')), _start(8, str(tmp_path / 'eight'))  # run side by side
  ones, eights = (_result(p) for p in procs)
  for method in ('lora', 'full'):
    one, eight = ones[method], eights[method]
    assert len(one['losses']) == 2
    for a, b in zip(one['losses'], eight['losses']):
      assert abs(a - b) <= 1e-4 * abs(a), (method, one['losses'], eight['losses'])
    for a, b in zip(one['sums'], eight['sums']):
      assert abs(a - b) <= 1e-3 * max(abs(a), 1e-3), method
