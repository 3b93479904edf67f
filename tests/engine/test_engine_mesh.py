"""On a 2x4 mesh of fake CPU devices the engine gives the same tokens as on one device (AR, APAR).

Runs in a subprocess: the fake device count must be set before jax is imported.
"""

import os
import subprocess
import sys
import textwrap

from child_env import child_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SCRIPT = textwrap.dedent('''
    import os, sys
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'
    import flax.linen as nn
    import jax, jax.numpy as jnp
    from tiny_model import FORKY, IDS, tiny_config, tiny_params
    from apar_jax import sharding
    from apar_jax.engine import Engine, Request, tree_signature
    from apar_jax.model import CausalSpec, build_model

    assert jax.device_count() == 8
    prompts = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6]]
    requests = [Request(token_ids=p, max_new_tokens=12) for p in prompts]
    config = tiny_config(max_slots=16, num_pages=200)
    config.mesh.update(data=2, fsdp=1, tensor=4)
    params = tiny_params(config, **FORKY)
    mesh = sharding.make_mesh(config.mesh)
    example = (jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32), CausalSpec())
    with mesh, nn.logical_axis_rules(sharding.logical_rules(config)):
      shardings = sharding.param_shardings(build_model(config.model), config, mesh, example)
    sharded = sharding.shard_params(params, shardings)
    assert len(sharded['layers_0']['attention']['q_proj']['kernel'].sharding.device_set) == 8
    forks = 0
    for mode in ('ar', 'apar'):
      one = Engine(config, mode, params=params, control_ids=IDS).generate(requests)
      many = Engine(config, mode, params=sharded, control_ids=IDS, mesh=mesh).generate(requests)
      for a, b in zip(one, many):
        assert tree_signature(a.branches) == tree_signature(b.branches), (mode, a, b)
        assert a.token_ids == b.token_ids
        forks += b.forks
    assert forks > 0
    print('OK', forks)
''')


def test_two_by_four_mesh_gives_single_device_tokens():
  env = child_env()
  proc = subprocess.run([sys.executable, '-c', SCRIPT, HERE], capture_output=True, text=True,
                        timeout=600, env=env, cwd=REPO)
  assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stderr[-4000:]
