"""`base_answers.answer_stream`: continuous batching equals batch decoding; `give_up` cancels early."""

import collections

from apar_jax.apar_data.prompt_generator import generate_prompts
from apar_jax.commands.base_answers import GIVE_UP_EVERY, Job, answer_stream, base_runtime
from apar_jax.defaults import distill_defaults


def _setup(load_config, max_new_tokens):
  config = load_config('tiny')
  dc = distill_defaults()
  dc.update(batch_size=2, max_new_tokens=max_new_tokens, backend='engine', temperature=0.0)
  return config, dc, base_runtime(config)


def _answers(runtime, config, dc, prompts, give_up=None):
  queue = collections.deque(Job(p) for p in prompts)
  return {job.prompt.id: item for job, item in answer_stream(runtime, config, dc, queue, give_up)}


def test_streamed_answers_match_the_dense_backend_and_give_up_cuts_a_prefix(load_config):
  config, dc, runtime = _setup(load_config, 2 * GIVE_UP_EVERY + 8)
  prompts = generate_prompts(3, seed=0)
  full = _answers(runtime, config, dc, prompts)
  dense_dc = distill_defaults()
  dense_dc.update(dc.to_dict())
  dense_dc.backend = 'dense'
  dense = _answers(runtime, config, dense_dc, prompts)
  assert {k: v.answer_ids for k, v in full.items()} == {k: v.answer_ids for k, v in dense.items()}
  assert all(not v.given_up for v in full.values())

  shown = collections.Counter()

  def give_up(text: str) -> str:
    shown[text] += 1
    return 'enough'
  cut = _answers(runtime, config, dc, prompts, give_up)
  assert shown  # each answer was shown once it had GIVE_UP_EVERY new tokens
  for pid, item in cut.items():
    whole = full[pid].answer_ids
    if full[pid].finished and len(whole) <= GIVE_UP_EVERY:
      assert item.answer_ids == whole and not item.given_up  # ended before the first look
      continue
    assert item.given_up == 'enough' and not item.finished
    assert GIVE_UP_EVERY <= len(item.answer_ids) < len(whole)
    assert item.answer_ids == whole[:len(item.answer_ids)]  # greedy: the cut is a prefix
