"""The function the `generate` command calls: records in input order, engine sized to the prompts."""

import json
import types

from apar_jax.engine.host.cli_api import generate_records
from tiny_model import FakeTokenizer, tiny_config

CLI_FIELDS = {'prompt', 'mode', 'text', 'token_ids', 'num_generated_tokens', 'decode_steps',
              'wall_time_s', 'forks', 'max_live_branches', 'peak_kv_pages', 'mean_accepted_tokens',
              'attended_kv_tokens'}


def test_generate_records_in_input_order(tiny, forky_params):
  config, _ = tiny
  runtime = types.SimpleNamespace(config=config, params=forky_params, tokenizer=FakeTokenizer(),
                                  mesh=None)
  seen = []
  prompts = ['a', 'b', 'c']
  records = generate_records(runtime, 'apar', prompts, [[1, 2, 3, 4, 5], [33], [7, 8]],
                             max_new_tokens=16, on_tokens=lambda *event: seen.append(event))
  assert [r['prompt'] for r in records] == prompts
  for r in records:
    assert CLI_FIELDS <= set(r) and r['mode'] == 'apar'
    json.dumps(r)
  assert {e[0] for e in seen} == {0, 1, 2}
  assert records[0]['forks'] > 0
