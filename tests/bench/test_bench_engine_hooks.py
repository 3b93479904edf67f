"""The engine hooks the serving benchmark uses: arrival times and per-chunk events; and the
transformers export the peers use."""

import time

import flax.linen as nn
import jax
import numpy as np
import pytest

from apar_jax.bench import forky
from apar_jax.engine.setup.build import sized_config
from apar_jax.engine import ChunkEvent, DoneEvent, Engine, Request


@pytest.fixture(scope='module')
def engine():
  config = sized_config(forky.forky_config(), max_prompt_len=8, max_new_tokens=8, slots=4,
                        requests=4, num_pages=32, chunk_steps=2)
  return Engine(config, 'ar', params=forky.forky_params(config), control_ids=forky.CONTROL_IDS)


def test_requests_wait_for_their_arrival(engine):
  engine.warmup()
  arrivals = [0.0, 0.3, 0.05]
  reqs = [Request(token_ids=[1, 2, 3], max_new_tokens=8, arrival_s=a) for a in arrivals]
  t0 = time.perf_counter()
  events = list(engine.stream(reqs, stream_tokens=False, chunk_events=True))
  assert time.perf_counter() - t0 >= 0.3
  done = {e.index: e.result for e in events if isinstance(e, DoneEvent)}
  assert sorted(done) == [0, 1, 2]
  for i, a in enumerate(arrivals):
    assert done[i].wall_time_s >= a
  chunks = [e for e in events if isinstance(e, ChunkEvent)]
  assert chunks and all(c.pages_in_use <= 32 for c in chunks)
  assert [c.time_s for c in chunks] == sorted(c.time_s for c in chunks)
  assert chunks[0].requests_waiting >= 1  # request 1 had not arrived at the first chunk
  assert done[1].token_ids == done[0].token_ids  # same prompt, same greedy answer


def test_bad_arrival_is_refused(engine):
  with pytest.raises(ValueError, match='arrival_s'):
    engine.generate([Request(token_ids=[1, 2], max_new_tokens=2, arrival_s=-1.0)])


@pytest.mark.parametrize('tie', [False, True])
def test_transformers_export_gives_our_logits(load_config, tie):
  torch = pytest.importorskip('torch')
  pytest.importorskip('transformers')
  import jax.numpy as jnp
  from apar_jax.bench.hf_export import to_hf_llama
  from apar_jax.model import CausalSpec, build_model
  config = load_config('tiny')
  config.model.tie_embeddings = tie
  model = build_model(config.model)
  params = model.init(jax.random.key(0), jnp.zeros((1, 1), jnp.int32),
                      jnp.zeros((1, 1), jnp.int32), CausalSpec())['params']
  params = jax.tree.map(lambda x: x * 3.0, nn.unbox(params))  # sharper logits
  tokens = np.array([[1, 5, 9, 200, 3000, 17, 44, 49153]], np.int32)
  positions = np.arange(tokens.shape[1], dtype=np.int32)[None]
  ours = np.asarray(model.apply({'params': params}, tokens, positions, CausalSpec()).logits)
  with torch.no_grad():
    theirs = to_hf_llama(config.model, params)(torch.as_tensor(tokens).long()).logits.numpy()
  from apar_jax.testing.accumulation_depth import forward_terms
  from apar_jax.testing.rounding import assert_close_across_orders
  assert_close_across_orders(theirs, ours, terms=forward_terms(config.model, tokens.shape[1]),
                             err_msg='transformers export')
