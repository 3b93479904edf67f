"""One process of the two-process engine test on the tiny model (a script, not collected by pytest).

    python engine_worker.py REPO_ROOT OUT_DIR reference
    python engine_worker.py REPO_ROOT OUT_DIR worker PORT PROCESS_ID

Both roles decode the same prompts greedily with the engine, AR and APAR, on the tiny random model
whose head provokes `[Fork]` (tests/engine/tiny_model.py, `FORKY`): batched with `Engine.generate`,
one request at a time, and through `cli_api.generate_records`; and batched in the prompt-lookup
speculative mode. `reference` runs on one CPU device;
`worker` joins the two-process job and decodes with params sharded over one 2x4 (data x tensor) mesh
from `make_global_mesh`. Each writes OUT_DIR/<role>_<process id>.json, with where the engine state
lives and what a request with a timed arrival gets (refused in a multi-process job).
"""

import json
import os

import worker_init  # noqa: E402

ARGS = worker_init.start()  # joins the job (worker role) before jax touches a backend

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import ml_collections  # noqa: E402

from apar_jax import distributed, sharding  # noqa: E402
from apar_jax.engine import Engine, Request, tree_signature  # noqa: E402
from apar_jax.engine.host.cli_api import generate_records  # noqa: E402
from apar_jax.model import CausalSpec, build_model  # noqa: E402
from apar_jax.runtime import Runtime  # noqa: E402
from tiny_model import FORKY, IDS, FakeTokenizer, tiny_config, tiny_params  # noqa: E402

PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6]]
NEW = 12


def sharded_params(config, params, mesh):
  """The params placed over `mesh` by the config's rules (heads and MLP over tensor)."""
  example = (jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32), CausalSpec())
  with mesh, nn.logical_axis_rules(sharding.logical_rules(config)):
    shardings = sharding.param_shardings(build_model(config.model), config, mesh, example)
  return sharding.shard_params(params, shardings)


def describe(result) -> dict:
  return dict(token_ids=list(result.token_ids), tree=tree_signature(result.branches),
              text=result.text, forks=result.forks, refused_forks=result.refused_forks,
              decode_steps=result.decode_steps, peak_kv_pages=result.peak_kv_pages)


def placement(engine: Engine) -> dict:
  """Where the engine's device state lives: devices and processes of its KV pool and outputs, and
  which data shards (rows of the leading shard axis) this process holds."""
  state = engine._state  # kept between calls  # pylint: disable=protected-access
  arrays = dict(kv=state.caches[0].k_pages, tokens=state.slots.tokens)
  return {name: dict(devices=len(a.sharding.device_set),
                     processes=sorted({d.process_index for d in a.sharding.device_set}),
                     shards=a.shape[0],
                     local_shards=sorted({s.index[0].start or 0 for s in a.addressable_shards}))
          for name, a in arrays.items()}


def decode(config, params, mesh) -> dict:
  """Every way of decoding the prompts, as JSON-able facts."""
  requests = [Request(token_ids=p, max_new_tokens=NEW) for p in PROMPTS]
  out = {}
  for mode in ('ar', 'apar'):
    engine = Engine(config, mode, params=params, control_ids=IDS, tokenizer=FakeTokenizer(),
                    mesh=mesh)
    out[f'{mode}_batched'] = [describe(r) for r in engine.generate(requests)]
    out[f'{mode}_stats'] = engine.last_stats
    out[f'{mode}_one_by_one'] = [describe(engine.generate([r])[0]) for r in requests[:2]]
    out[f'{mode}_placement'] = placement(engine)
  lookup = ml_collections.ConfigDict(config.to_dict())
  lookup.speculative = dict(tree='chain', lookup_num_draft=4)  # prompt lookup: no drafter weights
  engine = Engine(lookup, 'lookup', params=params, control_ids=IDS, tokenizer=FakeTokenizer(),
                  mesh=mesh)
  out['lookup_batched'] = [describe(r) for r in engine.generate(requests)]
  out['lookup_stats'] = engine.last_stats
  runtime = Runtime(config, build_model(config.model), params, FakeTokenizer(), mesh)
  records = generate_records(runtime, 'apar', [str(p) for p in PROMPTS], PROMPTS,
                             max_new_tokens=NEW)
  out['apar_records'] = [{k: r[k] for k in ('prompt', 'token_ids', 'text', 'forks')}
                         for r in records]
  try:  # admission by each process's clock would split the job: refused before anything runs
    engine.generate([Request(token_ids=PROMPTS[0], max_new_tokens=NEW, arrival_s=0.5)])
    out['timed_arrival'] = 'decoded'
  except ValueError as e:
    out['timed_arrival'] = str(e)
  return out


def main() -> None:
  config = tiny_config(max_slots=16, num_pages=200)
  params = tiny_params(config, **FORKY)
  if ARGS.role == 'reference':
    assert jax.device_count() == 1
    out = decode(config, params, None)
  else:
    assert jax.process_count() == 2 and jax.device_count() == 8
    config.mesh.update(data=2, fsdp=1, tensor=4)
    mesh = distributed.make_global_mesh(config.mesh)
    params = sharded_params(config, params, mesh)
    assert len(params['lm_head']['kernel'].sharding.device_set) == 8
    out = decode(config, params, mesh)
  path = os.path.join(ARGS.out_dir, f'{ARGS.role}_{ARGS.process_id}.json')
  with open(path, 'w') as f:
    json.dump(out, f)


if __name__ == '__main__':
  main()
