"""The function the `generate` command calls: records in input order, engine sized to the prompts."""

import json
import types

from apar_jax.engine.cli_api import fit_engine_config, generate_records
from tiny_model import FakeTokenizer, tiny_config

CLI_FIELDS = {'prompt', 'mode', 'text', 'token_ids', 'num_generated_tokens', 'decode_steps',
              'wall_time_s', 'forks', 'max_live_branches', 'peak_kv_pages', 'mean_accepted_tokens',
              'attended_kv_tokens'}


def test_fit_engine_config_sizes_the_engine_to_the_prompts():
  config = tiny_config()  # page_size 4, pages_per_slot 24, max_new_tokens 24, num_pages 96
  fitted = fit_engine_config(config, [10, 3], 16)
  assert fitted.engine.pages_per_slot == 8  # ceil((9 + 16) / 4) = 7 pages, rounded up to 4
  assert fitted.engine.max_new_tokens == 24 and fitted.engine.num_pages == 96  # never lowered
  assert fitted.engine.max_slots == config.engine.max_slots  # APAR keeps its branch slots
  big = fit_engine_config(config, [200, 3], 300)
  assert big.engine.max_new_tokens == 300
  assert big.engine.pages_per_slot == big.engine.num_pages == 128  # ceil(499 / 4) = 125 -> 128
  ar = fit_engine_config(config, [10, 3], 16, mode='ar')
  assert ar.engine.max_slots == 2 and ar.engine.max_requests <= 2
  assert config.engine.max_new_tokens == 24  # the caller's config is untouched


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
