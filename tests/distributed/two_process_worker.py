"""One process of the two-process mesh test (run as a script, not collected by pytest).

    python two_process_worker.py REPO_ROOT OUT_DIR reference
    python two_process_worker.py REPO_ROOT OUT_DIR worker PORT PROCESS_ID

`reference` runs the tiny model's forward on one CPU device and saves the logits; `worker` joins a
two-process job on 127.0.0.1:PORT (four fake CPU devices each, from XLA_FLAGS set by the parent),
builds the 2x4 (data x tensor) mesh with `make_global_mesh`, runs the same forward sharded over it and
saves the gathered logits plus a few facts about the placement.
"""

import json
import os

import worker_init  # noqa: E402

ARGS = worker_init.start()  # joins the job (worker role) before jax touches a backend
OUT_DIR, ROLE = ARGS.out_dir, ARGS.role

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

from conftest import load_config  # noqa: E402
from apar_jax import distributed, sharding  # noqa: E402
from apar_jax.model import CausalSpec, build_model  # noqa: E402


def tiny_setup():
  config = load_config('tiny')
  config.model.update(vocab_size=96, n_heads=8, n_kv_heads=4, head_dim=8, d_model=64, ffn_dim=128)
  config.mesh.update(data=2, fsdp=1, tensor=4)
  model = build_model(config.model)
  tokens = np.random.default_rng(0).integers(0, 96, (4, 10)).astype(np.int32)
  positions = np.broadcast_to(np.arange(10, dtype=np.int32), (4, 10)).copy()
  params = nn.unbox(model.init(jax.random.key(0), tokens, positions, CausalSpec())['params'])
  return config, model, tokens, positions, params


def run_reference() -> None:
  _, model, tokens, positions, params = tiny_setup()
  logits = model.apply({'params': params}, tokens, positions, CausalSpec()).logits
  np.save(os.path.join(OUT_DIR, 'reference.npy'), np.asarray(logits))


def run_worker() -> None:
  assert jax.process_count() == 2 and jax.device_count() == 8 and jax.local_device_count() == 4
  config, model, tokens, positions, params = tiny_setup()
  mesh = distributed.make_global_mesh(config.mesh)
  rows = [sorted({d.process_index for d in mesh.devices[i].flat}) for i in range(2)]
  rules = sharding.logical_rules(config)
  with mesh, nn.logical_axis_rules(rules):
    shardings = sharding.param_shardings(model, config, mesh, (tokens, positions, CausalSpec()))
    # jax 0.10.2: device_put of an array that is identical on every process to a sharding over all
    # processes' devices works; each process fills its own shards.
    placed = sharding.shard_params(params, shardings)
    batch = NamedSharding(mesh, PartitionSpec('data'))
    g_tokens, g_positions = jax.device_put((tokens, positions), batch)
    forward = jax.jit(lambda p, t, q: model.apply({'params': p}, t, q, CausalSpec()).logits)
    logits = forward(placed, g_tokens, g_positions)
  gathered = multihost_utils.process_allgather(logits, tiled=True)
  q = placed['layers_0']['attention']['q_proj']['kernel']
  facts = dict(
      rows=rows,
      main=distributed.is_main_process(),
      logits_shape=list(logits.shape),
      logits_local_rows=sorted({s.index[0].start or 0 for s in logits.addressable_shards}),
      q_shard_shapes=sorted({tuple(s.data.shape) for s in q.addressable_shards}),
      describe=distributed.describe())
  np.save(os.path.join(OUT_DIR, f'logits_{jax.process_index()}.npy'), np.asarray(gathered))
  with open(os.path.join(OUT_DIR, f'facts_{jax.process_index()}.json'), 'w') as f:
    json.dump(facts, f)


if __name__ == '__main__':
  run_reference() if ROLE == 'reference' else run_worker()
