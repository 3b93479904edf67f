"""With 8 fake CPU devices, the forward on a 2x4 (fsdp x tensor) mesh matches one device."""

import os
import subprocess
import sys
import textwrap

from child_env import child_env

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SCRIPT = textwrap.dedent('''
    import os, sys
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'
    import flax.linen as nn
    import jax, jax.numpy as jnp, numpy as np
    from conftest import load_config
    from apar_jax import sharding
    from apar_jax.model import CausalSpec, DenseCache, DenseCacheSpec, build_model
    from apar_jax.testing.accumulation_depth import forward_terms
    from apar_jax.testing.rounding import assert_close_across_orders

    assert jax.device_count() == 8
    config = load_config('tiny')
    config.model.update(vocab_size=96, n_heads=8, n_kv_heads=4, head_dim=8, d_model=64, ffn_dim=128)
    config.mesh.update(data=1, fsdp=2, tensor=4)
    model = build_model(config.model)
    tokens = jnp.asarray(np.random.default_rng(0).integers(0, 96, (2, 10)), jnp.int32)
    pos = jnp.broadcast_to(jnp.arange(10), (2, 10))
    params = nn.unbox(model.init(jax.random.key(0), tokens, pos, CausalSpec())['params'])
    ref = model.apply({'params': params}, tokens, pos, CausalSpec()).logits

    mesh = sharding.make_mesh(config.mesh)
    rules = sharding.logical_rules(config)
    with mesh, nn.logical_axis_rules(rules):
      shardings = sharding.param_shardings(model, config, mesh, (tokens, pos, CausalSpec()))
      sharded = sharding.shard_params(params, shardings)
      got = jax.jit(lambda p: model.apply({'params': p}, tokens, pos, CausalSpec()).logits)(sharded)
      caches = tuple(DenseCache.zeros(2, 16, 4, 8, jnp.float32) for _ in range(2))
      cached = jax.jit(lambda p, c: model.apply({'params': p}, tokens, pos,
                       DenseCacheSpec(jnp.zeros(2, jnp.int32)), c).logits)(sharded, caches)
    terms = forward_terms(config.model, keys=16)  # the cache's length bounds every softmax
    assert_close_across_orders(got, ref, terms=terms, err_msg='mesh vs one device')
    assert_close_across_orders(cached, ref, terms=terms, err_msg='cached mesh vs one device')

    q = sharded['layers_0']['attention']['q_proj']['kernel']   # [d, Hq, D]: fsdp x tensor
    shard_shapes = {s.data.shape for s in q.addressable_shards}
    assert shard_shapes == {(32, 2, 8)}, shard_shapes
    emb = sharded['embed']['embedding']                         # [V, d]: tensor x fsdp
    assert {s.data.shape for s in emb.addressable_shards} == {(24, 32)}
    down = sharded['layers_1']['mlp']['down_proj']['kernel']    # [ffn, d]: tensor x fsdp
    assert {s.data.shape for s in down.addressable_shards} == {(32, 32)}
    print('OK')
''')


def test_two_by_four_mesh_matches_single_device():
  env = child_env()
  proc = subprocess.run([sys.executable, '-c', SCRIPT, REPO_ROOT], capture_output=True, text=True,
                        timeout=300, env=env)
  assert proc.returncode == 0 and 'OK' in proc.stdout, proc.stderr[-3000:]
