"""The server through the real `openai` client: greedy answers equal `generate`'s, streamed deltas
add up to the whole answer, stop sequences, sampling seeds, concurrent requests decoding side by
side, and APAR over HTTP."""

import concurrent.futures
import json
import os
import subprocess
import sys

import openai
import pytest

from apar_jax.engine.host.cli_api import generate_records
from serving_testlib import PROMPTS, chat_ids, tiny_runtime

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NEW = 24


def client(server) -> openai.OpenAI:
  return openai.OpenAI(base_url=f'{server.url}/v1', api_key='unused', max_retries=0, timeout=120)


def chat(server, prompt, **kwargs):
  return client(server).chat.completions.create(
      model=server.server.settings.model_name, messages=[{'role': 'user', 'content': prompt}],
      **{'max_tokens': NEW, 'temperature': 0.0, **kwargs})


def streamed_text(server, prompt, **kwargs) -> tuple[str, list]:
  chunks = list(chat(server, prompt, stream=True, **kwargs))
  return ''.join(c.choices[0].delta.content or '' for c in chunks if c.choices), chunks


@pytest.fixture(scope='module')
def generate_cli_texts(tmp_path_factory):
  """`python -m apar_jax generate --mode=ar` on configs/tiny.py: the texts the server must give."""
  tmp = tmp_path_factory.mktemp('generate')
  (tmp / 'prompts.jsonl').write_text(''.join(json.dumps({'prompt': p}) + '\n' for p in PROMPTS))
  proc = subprocess.run(
      [sys.executable, '-m', 'apar_jax', 'generate', '--config=configs/tiny.py', '--mode=ar',
       f'--prompts_file={tmp / "prompts.jsonl"}', f'--max_new_tokens={NEW}', '--temperature=0',
       f'--output={tmp / "out.jsonl"}'], capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return [json.loads(line)['text'] for line in (tmp / 'out.jsonl').read_text().splitlines()]


def test_greedy_chat_equals_generate(ar_server, generate_cli_texts):
  for prompt, want in zip(PROMPTS, generate_cli_texts):
    got = chat(ar_server, prompt)
    assert got.choices[0].message.content == want
    assert got.choices[0].finish_reason in ('stop', 'length')
    assert got.model == 'tiny' and got.object == 'chat.completion'
    assert got.usage.completion_tokens <= NEW < got.usage.total_tokens
    extra = got.model_extra['decoding']
    assert extra['mode'] == 'ar' and extra['decode_steps'] == got.usage.completion_tokens
    assert extra['mean_accepted_tokens'] == 1.0 and extra['forks'] == 0


def test_stream_deltas_add_up_to_the_answer(ar_server):
  whole = chat(ar_server, PROMPTS[2])
  text, chunks = streamed_text(ar_server, PROMPTS[2], stream_options={'include_usage': True})
  assert text == whole.choices[0].message.content
  assert chunks[0].choices[0].delta.role == 'assistant'
  assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == \
      whole.choices[0].finish_reason
  assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # usage chunk last
  assert len({c.id for c in chunks}) == 1


def test_raw_completion_equals_generate_raw_prompt(ar_server):
  # What `generate --raw_prompt` decodes: the prompt's ids as they are, no chat template.
  runtime = tiny_runtime()
  prompt = 'The capital of France is'
  [want] = generate_records(runtime, 'ar', [prompt], [runtime.tokenizer.encode(prompt)],
                            max_new_tokens=NEW, warmup=False)
  got = client(ar_server).completions.create(model='tiny', prompt=prompt, max_tokens=NEW,
                                             temperature=0.0)
  assert got.object == 'text_completion'
  assert got.choices[0].text == want['text']
  assert got.usage.prompt_tokens == len(runtime.tokenizer.encode(prompt))


def test_stop_sequence_ends_the_answer_before_it(ar_server):
  full = chat(ar_server, PROMPTS[1]).choices[0].message.content
  stop = full[len(full) // 2:len(full) // 2 + 3]
  want = full[:full.index(stop)]
  got = chat(ar_server, PROMPTS[1], stop=[stop, 'never-written'])
  assert got.choices[0].message.content == want
  assert got.choices[0].finish_reason == 'stop'
  assert streamed_text(ar_server, PROMPTS[1], stop=stop)[0] == want


def test_seeded_sampling_is_reproducible(ar_server):
  a, b, c = (chat(ar_server, PROMPTS[0], temperature=1.0, top_p=0.9, seed=s).choices[0]
             .message.content for s in (7, 7, 8))
  assert a == b != c


def test_concurrent_requests_decode_side_by_side(ar_server):
  prompts = [f'{p} ({i})' for i in range(4) for p in PROMPTS]  # 16 requests
  alone = [chat(ar_server, p) for p in prompts]
  steps_before = _metric(ar_server, 'apar_decode_steps_total')
  with concurrent.futures.ThreadPoolExecutor(16) as pool:
    together = list(pool.map(lambda p: chat(ar_server, p), prompts))
  engine_steps = _metric(ar_server, 'apar_decode_steps_total') - steps_before
  assert [r.choices[0].message.content for r in together] == \
      [r.choices[0].message.content for r in alone]
  one_after_another = sum(r.model_extra['decoding']['decode_steps'] for r in alone)
  assert engine_steps < one_after_another / 2, (engine_steps, one_after_another)


def test_apar_over_http_equals_generate(apar_server, apar_runtime):
  config = apar_runtime.config
  want = generate_records(apar_runtime, 'apar', PROMPTS,
                          [chat_ids(apar_runtime.tokenizer, config, p) for p in PROMPTS],
                          max_new_tokens=NEW)
  assert sum(r['forks'] for r in want) >= 3
  for prompt, w in zip(PROMPTS, want):
    got = chat(apar_server, prompt)
    assert got.choices[0].message.content == w['text']
    decoding = got.model_extra['decoding']
    assert (decoding['forks'], decoding['decode_steps']) == (w['forks'], w['decode_steps'])
    assert decoding['mode'] == 'apar'
    assert streamed_text(apar_server, prompt)[0] == w['text']


def _metric(server, name: str) -> float:
  import urllib.request
  with urllib.request.urlopen(f'{server.url}/metrics') as f:
    for line in f.read().decode().splitlines():
      if line.startswith(name + ' '):
        return float(line.split()[1])
  raise KeyError(name)
