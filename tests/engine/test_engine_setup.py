"""Engine set-up: capacities follow from the workload in one place, the drafter is resolved once."""

import pytest

from apar_jax.engine import Request
from apar_jax.engine.setup import build as setup
from apar_jax.engine.device.state import pages_for
from tiny_model import IDS, tiny_config, tiny_params


def test_sized_config_holds_the_workload_and_nothing_more():
  config = tiny_config()  # page_size 4, pages_per_slot 24, max_new_tokens 24, 8 slots, 4 requests
  sized = setup.sized_config(config, 'apar', max_prompt_len=10, max_new_tokens=16)
  eng = sized.engine
  assert eng.pages_per_slot == 7  # ceil((9 + 16) / 4): the tightest table
  assert eng.max_new_tokens == 16
  assert (eng.max_slots, eng.max_requests) == (8, 4)  # APAR keeps its branch slots
  assert eng.num_pages == 96  # the config's pool already holds 8 full tables
  big = setup.sized_config(config, 'apar', max_prompt_len=200, max_new_tokens=300, slack=5)
  assert big.engine.pages_per_slot == 125  # ceil(499 / 4)
  assert big.engine.num_pages == 8 * (125 + 2)  # raised: every slot a full table and its window
  ar = setup.sized_config(config, 'ar', max_prompt_len=10, max_new_tokens=16, requests=2)
  assert (ar.engine.max_slots, ar.engine.max_requests) == (2, 2)  # no branch: a slot per request
  fixed = setup.sized_config(config, 'lookup', max_prompt_len=10, max_new_tokens=16, slots=1,
                             requests=1, num_pages=9, chunk_steps=3)
  assert (fixed.engine.num_pages, fixed.engine.chunk_steps) == (9, 3)  # a budget is kept exactly
  assert config.engine.max_new_tokens == 24 and config.engine.pages_per_slot == 24  # untouched


def test_sized_config_refuses_a_bad_workload():
  with pytest.raises(ValueError, match='unknown engine mode'):
    setup.sized_config(tiny_config(), 'apar_oracle', max_prompt_len=4, max_new_tokens=4)
  with pytest.raises(ValueError, match='max_new_tokens >= 1'):
    setup.sized_config(tiny_config(), 'ar', max_prompt_len=4, max_new_tokens=0)


def test_build_engine_gives_the_verification_window_its_pages():
  config = tiny_config()
  config.speculative = dict(tree='(0,),(0,0),(0,0,0)', lookup_num_draft=3)
  params = tiny_params(config)
  engine = setup.build_engine(config, 'lookup', params=params, control_ids=IDS,
                              max_prompt_len=5, max_new_tokens=12, slots=1, requests=1)
  caps = engine.caps
  assert caps.slack == 3 and caps.pages_per_slot == pages_for(4 + 12, 4)
  assert caps.num_pages >= caps.table_width  # the full answer and its window fit
  ar = setup.build_engine(config, 'ar', params=params, control_ids=IDS, max_prompt_len=5,
                          max_new_tokens=12, slots=1, requests=1)
  request = [Request(token_ids=[1, 2, 3, 1, 2], max_new_tokens=12)]
  assert engine.generate(request)[0].token_ids == ar.generate(request)[0].token_ids
