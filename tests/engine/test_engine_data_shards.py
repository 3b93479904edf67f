"""The engine's slots sharded over the data axis (a 4x1x2 mesh of fake CPU devices: four data shards,
heads over tensor): each shard holds its own slots and KV pool on its own devices, requests spread
over the shards and decode side by side (four times one shard's slots), and the tokens are those of
one device, for AR, APAR with forks and the speculative modes (prompt lookup, APAR + Medusa, Hidden
Transfer), a sampled request among greedy ones included, and a request cancelled mid-answer
frees its shard's pages; inside a chunk only the loop flags cross
shards, and the greedy-or-sampled choice stays a real branch. With one shard on a
tensor-parallel mesh the KV pools' heads are split over tensor.

Runs in a subprocess: the fake device count must be set before jax is imported.
"""

import os
import subprocess
import sys
import textwrap

from child_env import child_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SCRIPT = textwrap.dedent(r'''
    import os, re, sys
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=8'
    import flax.linen as nn
    import jax, jax.numpy as jnp
    import numpy as np
    from test_engine_speculative import SPEC, drafter_kwargs
    from tiny_model import FORKY, IDS, FakeTokenizer, tiny_config, tiny_params
    from apar_jax import sharding
    from apar_jax.engine import Engine, Request, tree_signature
    from apar_jax.modes import split_mode
    from apar_jax.model import CausalSpec, build_model

    PROMPTS = [[1, 2, 3, 4, 5], [33], list(range(40, 60)), [9, 8, 7, 6], [12, 13], [50, 3, 21]]
    # Per shard: two requests at a time. APAR's trees depend on free slots (a fork is refused when
    # none is left), so its modes get slots for every branch and the trees can be compared.
    CAPS = dict(max_slots=2, max_requests=2, num_pages=40)
    APAR_CAPS = dict(max_slots=16, max_requests=2, num_pages=120)

    def config_for(mode, mesh_shape=None):
      config = tiny_config(**(APAR_CAPS if split_mode(mode)[0] else CAPS))
      kind = split_mode(mode)[1]
      if kind is not None:
        config.speculative = dict(SPEC[kind])
      if mesh_shape:
        config.mesh.update(data=mesh_shape[0], fsdp=mesh_shape[1], tensor=mesh_shape[2])
      return config

    def iota(dims, perm):
        """Device ids of an HLO iota tile assignment `[dims]T(perm)`."""
        ids = np.arange(int(np.prod(dims))).reshape(dims)
        return ids.transpose(perm) if perm else ids

    def ints(text):
        return [int(i) for i in re.findall(r'\d+', text or '')]

    def device_groups(line):
        """The device groups of an HLO collective (replica groups or permute pairs)."""
        named = re.search(r"replica_groups=mesh\[([^\]]*)\](?:, device_ids=\(\[([\d,]+)\]"
                          r"(?:T\(([\d,]+)\))?\))? \{([^}]*)\}", line)
        if named:
            axes = re.findall(r"'(\w+)'=(\d+)", named.group(1))
            sizes = [int(n) for _, n in axes]
            ids = (iota(ints(named.group(2)), ints(named.group(3))).reshape(sizes)
                   if named.group(2) else np.arange(int(np.prod(sizes))).reshape(sizes))
            reduced = [i for i, (name, _) in enumerate(axes) if f"'{name}'" in named.group(4)]
            kept = [i for i in range(len(axes)) if i not in reduced]
            return ids.transpose(kept + reduced).reshape(
                -1, int(np.prod([sizes[i] for i in reduced]))).tolist()
        tiled = re.search(r'replica_groups=\[(\d+),(\d+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?',
                          line)
        if tiled:
            return iota(ints(tiled.group(3)), ints(tiled.group(4))).reshape(
                int(tiled.group(1)), int(tiled.group(2))).tolist()
        listed = re.search(r'(?:source_target_pairs|replica_groups)=\{(\{[\d,{}]*\})\}', line)
        assert listed, line
        return [ints(g) for g in re.findall(r'\{([\d,]+)\}', listed.group(1))]

    def sorts_outside_conditionals(hlo):
        """Sort ops in computations no conditional branch reaches (through calls and fusions)."""
        bodies, name = {}, None
        for line in hlo.splitlines():
          head = re.match(r'^(?:ENTRY )?%?([\w.\-]+) .*\{$', line)
          if head and not line.startswith(' '):
            name = head.group(1)
            bodies[name] = []
          elif name is not None:
            bodies[name].append(line)
        callee = re.compile(r'(?:calls|to_apply|branch_computations|true_computation|'
                            r'false_computation)=(\{[^}]*\}|[^ ,]+)')  # one name or {%a, %b}
        def called(lines):
          """Names of the computations these lines call."""
          refs = ' '.join(m for l in lines for m in callee.findall(l))
          return set(re.findall(r'%([\w.\-]+)', refs))
        reached = set()
        todo = [c for lines in bodies.values() for l in lines if ' conditional(' in l
                for c in called([l])]
        while todo:
          c = todo.pop()
          if c not in reached and c in bodies:
            reached.add(c)
            todo.extend(called(bodies[c]))
        return sum(' sort(' in l for c, lines in bodies.items() if c not in reached for l in lines)

    def crosses_rows(line, row=2):
        """Whether an HLO collective spans devices of different data rows (mesh 4x1x2, device ids
        in mesh order: row d holds devices 2d and 2d + 1)."""
        if not re.search(r'(all-gather|all-reduce|collective-permute|all-to-all|reduce-scatter)'
                         r'(-start)?\(', line):
            return False
        return any(len({i // row for i in g}) > 1 for g in device_groups(line))

    def engine(mode, params, mesh=None):
      config = config_for(mode, mesh and tuple(mesh.shape.values()))
      return Engine(config, mode, params=params, control_ids=IDS, tokenizer=FakeTokenizer(),
                    mesh=mesh, **drafter_kwargs(split_mode(mode)[1] or 'none'))

    assert jax.device_count() == 8
    params = tiny_params(config_for('ar'), **FORKY)
    config = config_for('ar', (4, 1, 2))
    mesh = sharding.make_mesh(config.mesh)
    example = (jnp.zeros((1, 1), jnp.int32), jnp.zeros((1, 1), jnp.int32), CausalSpec())
    with mesh, nn.logical_axis_rules(sharding.logical_rules(config)):
      shardings = sharding.param_shardings(build_model(config.model), config, mesh, example)
    sharded = sharding.shard_params(params, shardings)
    requests = [Request(token_ids=p, max_new_tokens=12) for p in PROMPTS]
    # One request samples: the shards decide together whether a step samples (step hints), and a
    # greedy shard taking the sampling branch must still give its greedy tokens.
    requests[3] = Request(token_ids=PROMPTS[3], max_new_tokens=12, temperature=0.9, top_p=0.9,
                          seed=5)

    forks = 0
    for mode in ('ar', 'apar', 'lookup', 'apar_medusa', 'hidden_transfer'):
      one = engine(mode, params)
      expected = one.generate(requests)
      one_stats = one.last_stats
      assert all(r.refused_forks == 0 for r in expected), mode
      many = engine(mode, sharded, mesh)
      for attempt in range(2):  # a fresh state, then the reset one
        got = many.generate(requests)
        for a, b in zip(expected, got):
          assert a.token_ids == b.token_ids, (mode, attempt, a.token_ids, b.token_ids)
          assert tree_signature(a.branches) == tree_signature(b.branches), (mode, attempt)
          assert (a.decode_steps, a.forks) == (b.decode_steps, b.forks), (mode, attempt)
        forks += sum(b.forks for b in got)
      stats = many.last_stats
      assert stats['data_shards'] == 4 and one_stats['data_shards'] == 1
      assert stats['free_pages_end'] == stats['num_pages'] == 4 * one_stats['num_pages']
      assert stats['min_refcount_end'] == 0 == stats['max_refcount_end']
      # Six requests: one device (two slots) decodes them in three waves, four shards all at once.
      assert stats['steps'] == max(r.decode_steps for r in got) < one_stats['steps'], (
          mode, stats, one_stats)
      tokens = many._state.slots.tokens  # [D, S, max_new]
      kv = many._state.caches[0].k_pages  # [D, P + 1, page, Hkv, hd]
      assert tokens.sharding.spec[0] == 'data' and kv.sharding.spec[0] == 'data'
      assert {s.data.shape[0] for s in tokens.addressable_shards} == {1}
      assert len({s.index[0].start for s in kv.addressable_shards}) == 4
      assert kv.sharding.spec[3] == 'tensor'  # two KV heads over the two tensor devices of a row
      # Shards share nothing inside a chunk: every collective stays within a mesh row (tensor)
      # except the loop flags ("any branch left", "any branch samples", "any branch penalises
      # repeats" over every shard): one all-reduce of three bools over data, at the start and
      # after each step.
      device_params = (sharded if many.speculative is None else
                       (sharded, many.speculative.params))
      hlo = many.fns.run_chunk.lower(device_params, many._state,
                                     jnp.zeros((4, many.caps.max_slots), bool),
                                     jnp.int32(4)).compile().as_text()
      across = [line.split(' = ')[1][:40] for line in hlo.splitlines() if crosses_rows(line)]
      assert len(across) == 2 and all(a.startswith('pred[3]') and 'all-reduce' in a
                                      for a in across), (mode, across)
      # The greedy-or-sampled choice stays a real branch under the shard vmap (one predicate for
      # all shards), so greedy steps skip the sampler's sort: a sort only inside a conditional.
      assert 'conditional(' in hlo, mode
      sorts_outside = sorts_outside_conditionals(hlo)
      assert sorts_outside == 0, (mode, sorts_outside)
      print(mode, 'steps', one_stats['steps'], '->', stats['steps'])
    assert forks > 0

    # A request cancelled mid-answer (live feed) on four shards: its shard's pages all come back,
    # the other requests decode as before.
    from apar_jax.engine import DoneEvent
    from apar_jax.engine.host.request_feed import LiveFeed
    greedy = [Request(token_ids=p, max_new_tokens=12) for p in PROMPTS]
    expected = engine('apar', params).generate(greedy)
    victim = max(range(len(PROMPTS)), key=lambda i: expected[i].forks)
    many = engine('apar', sharded, mesh)
    feed = LiveFeed(len(PROMPTS))
    for i, r in enumerate(greedy):
      feed.submit(many.prepare(i, r))
    feed.close()
    done, chunks = {}, 0
    for event in many.serve(feed, chunk_steps=2, chunk_events=True):
      if isinstance(event, DoneEvent):
        done[event.index] = event
      elif type(event).__name__ == 'ChunkEvent':
        chunks += 1
        if chunks == 2:
          feed.cancel(victim)
    assert done[victim].cancelled and expected[victim].decode_steps > 4
    for i, want in enumerate(expected):
      if i != victim:
        assert not done[i].cancelled
        assert tree_signature(done[i].result.branches) == tree_signature(want.branches), i
    stats = many.last_stats
    assert stats['free_pages_end'] == stats['num_pages']
    assert stats['min_refcount_end'] == 0 == stats['max_refcount_end']
    print('cancelled on shards', victim, expected[victim].forks)

    # One shard on a tensor-parallel mesh (1x1x2): the KV pools' heads are split over tensor.
    config = config_for('apar', (1, 1, 2))
    mesh = sharding.make_mesh(config.mesh, jax.devices()[:2])
    with mesh, nn.logical_axis_rules(sharding.logical_rules(config)):
      shardings = sharding.param_shardings(build_model(config.model), config, mesh, example)
    many = engine('apar', sharding.shard_params(params, shardings), mesh)
    got = many.generate(requests)
    expected = engine('apar', params).generate(requests)
    assert [r.token_ids for r in got] == [r.token_ids for r in expected]
    assert many.last_stats['data_shards'] == 1
    kv = many._state.caches[0].k_pages  # [1, P + 1, page, Hkv = 2, hd]
    assert kv.sharding.spec[3] == 'tensor' and {s.data.shape[3] for s in kv.addressable_shards} == {1}
    print('OK', forks)
''')


def test_data_shards_decode_side_by_side_with_single_device_tokens():
  env = child_env()
  proc = subprocess.run([sys.executable, '-c', SCRIPT, HERE], capture_output=True, text=True,
                        timeout=900, env=env, cwd=REPO)
  assert proc.returncode == 0 and 'OK' in proc.stdout, (proc.stdout[-2000:], proc.stderr[-4000:])
