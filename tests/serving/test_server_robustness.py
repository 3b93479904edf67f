"""What a server must survive: bad input (400 + the OpenAI error object, then the next request is
served), prompts too large for the model or the KV pool (400 / 413 before admission), a full queue
(503 + Retry-After), a client gone mid-answer (cancelled, pages freed, allocator invariants hold),
and the health, model list and metrics endpoints."""

import json
import threading
import time

import httpx
import pytest

from serving_testlib import PROMPTS, start, tiny_config

MESSAGES = [{'role': 'user', 'content': 'Hello there'}]
BAD_BODIES = [
    ('{"messages": [', None),  # invalid JSON
    ('[1, 2]', None),  # not an object
    ('{}', 'messages'),  # missing messages
    ('{"messages": []}', 'messages'),
    ('{"messages": "hi"}', 'messages'),
    ('{"messages": [{"role": "user"}]}', 'messages.0.content'),
    ('{"messages": [{"role": "robot", "content": "hi"}]}', 'messages.0.role'),
    ('{"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}',
     'messages.0.content.0.type'),
    ('{"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "x"}]}',
     'messages'),
    (json.dumps({'messages': MESSAGES, 'max_tokens': -5}), 'max_tokens'),
    (json.dumps({'messages': MESSAGES, 'max_tokens': 0}), 'max_tokens'),
    (json.dumps({'messages': MESSAGES, 'max_tokens': 10**6}), 'max_tokens'),
    (json.dumps({'messages': MESSAGES, 'max_tokens': '12'}), 'max_tokens'),
    (json.dumps({'messages': MESSAGES, 'max_tokens': 2.5}), 'max_tokens'),
    (json.dumps({'messages': MESSAGES, 'temperature': 'hot'}), 'temperature'),
    (json.dumps({'messages': MESSAGES, 'temperature': -1}), 'temperature'),
    (json.dumps({'messages': MESSAGES, 'top_p': 0}), 'top_p'),
    (json.dumps({'messages': MESSAGES, 'seed': 'x'}), 'seed'),
    (json.dumps({'messages': MESSAGES, 'stream': 'yes'}), 'stream'),
    (json.dumps({'messages': MESSAGES, 'stop': 7}), 'stop'),
    (json.dumps({'messages': MESSAGES, 'stop': ['a', 'b', 'c', 'd', 'e']}), 'stop'),
    (json.dumps({'messages': MESSAGES, 'n': 3}), 'n'),
]


def post(server, body: str, path='/v1/chat/completions', timeout=120.0) -> httpx.Response:
  return httpx.post(f'{server.url}{path}', content=body, timeout=timeout,
                    headers={'content-type': 'application/json'})


def metric(server, name: str) -> float:
  for line in httpx.get(f'{server.url}/metrics').text.splitlines():
    if line.startswith(name + ' '):
      return float(line.split()[1])
  raise KeyError(name)


def wait_for(condition, timeout=60.0):
  deadline = time.monotonic() + timeout
  while not condition():
    assert time.monotonic() < deadline, 'timed out'
    time.sleep(0.02)


@pytest.mark.parametrize('body, param', BAD_BODIES)
def test_bad_input_is_400_with_the_error_object_and_the_server_keeps_serving(ar_server, body,
                                                                               param):
  r = post(ar_server, body)
  assert r.status_code == 400, r.text
  error = r.json()['error']
  assert set(error) == {'message', 'type', 'param', 'code'}
  assert error['type'] == 'invalid_request_error' and error['message']
  assert error['param'] == param
  ok = post(ar_server, json.dumps({'messages': MESSAGES, 'max_tokens': 3}))
  assert ok.status_code == 200 and ok.json()['choices'][0]['message']['content']


def test_unknown_fields_are_ignored_and_wrong_model_is_404(ar_server):
  r = post(ar_server, json.dumps({'messages': MESSAGES, 'max_tokens': 2, 'logit_bias': {},
                                  'frequency_penalty': 0}))
  assert r.status_code == 200
  r = post(ar_server, json.dumps({'messages': MESSAGES}))  # every sampling field defaulted
  assert r.status_code == 200
  assert r.json()['usage']['completion_tokens'] <= tiny_config().generate.max_new_tokens
  r = post(ar_server, json.dumps({'messages': MESSAGES, 'model': 'gpt-4o'}))
  assert r.status_code == 404 and r.json()['error']['code'] == 'model_not_found'
  r = httpx.get(f'{ar_server.url}/v1/nowhere')
  assert r.status_code == 404 and 'no route' in r.json()['error']['message']


def test_prompts_too_large_are_refused_before_admission(ar_server):
  caps = ar_server.worker.engine.caps
  admitted = metric(ar_server, 'apar_prompt_tokens_total')
  long = ' '.join(['word'] * (caps.slot_capacity + 10))
  r = post(ar_server, json.dumps({'messages': [{'role': 'user', 'content': long}]}))
  assert r.status_code == 400 and r.json()['error']['code'] == 'context_length_exceeded'
  assert 'pages_per_slot' in r.json()['error']['message']
  r = post(ar_server, json.dumps({'prompt': long}), path='/v1/completions')
  assert r.status_code == 400
  assert metric(ar_server, 'apar_prompt_tokens_total') == admitted  # nothing reached the engine


def test_prompt_beyond_the_page_pool_is_413():
  config = tiny_config()
  config.engine.num_pages = 6  # 96 tokens of KV; a slot could hold 1024
  server = start(config, 'ar')
  try:
    r = post(server, json.dumps({'messages': [{'role': 'user', 'content': 'word ' * 80}],
                                 'max_tokens': 16}))
    assert r.status_code == 413 and r.json()['error']['code'] == 'kv_pages_exceeded'
    assert post(server, json.dumps({'messages': MESSAGES, 'max_tokens': 4})).status_code == 200
  finally:
    server.stop()


def test_full_queue_is_503_with_retry_after_and_a_disconnect_frees_the_pages():
  config = tiny_config()
  config.engine.max_requests = 1  # one request decodes, one may wait, the third is refused
  config.engine.max_new_tokens = 1024
  server = start(config, 'ar', max_waiting=1)
  try:
    body = json.dumps({'messages': MESSAGES, 'max_tokens': 960, 'temperature': 0, 'stream': True})
    with httpx.Client(timeout=120) as first:
      with first.stream('POST', f'{server.url}/v1/chat/completions', content=body,
                        headers={'content-type': 'application/json'}) as streamed:
        lines = streamed.iter_lines()
        assert next(lines).startswith('data: ')
        wait_for(lambda: metric(server, 'apar_kv_pages_in_use') > 0)  # admitted, decoding
        waiting = threading.Thread(target=post, args=(server, json.dumps(
            {'messages': MESSAGES, 'max_tokens': 4})))
        waiting.start()
        wait_for(lambda: metric(server, 'apar_queue_depth') == 1)
        refused = post(server, json.dumps({'messages': MESSAGES, 'max_tokens': 4}))
        assert refused.status_code == 503, refused.text
        assert refused.headers['retry-after'] == '1'
        assert refused.json()['error']['type'] == 'server_overloaded'
      # The stream closed mid-answer: the request is cancelled at the next chunk.
    wait_for(lambda: metric(server, 'apar_cancelled_requests_total') == 1)
    waiting.join(120)
    wait_for(lambda: metric(server, 'apar_requests_in_flight') == 0)
    stats = server.worker.engine.page_stats()
    assert stats['free_pages_end'] == stats['num_pages']
    assert stats['min_refcount_end'] == 0 == stats['max_refcount_end']
    assert metric(server, 'apar_kv_pages_in_use') == 0
    assert post(server, json.dumps({'messages': MESSAGES, 'max_tokens': 4})).status_code == 200
  finally:
    server.stop()


def test_disconnect_of_a_forking_apar_request_frees_its_pages(apar_server):
  before = metric(apar_server, 'apar_cancelled_requests_total')
  body = json.dumps({'messages': [{'role': 'user', 'content': PROMPTS[1]}], 'stream': True,
                     'temperature': 0})
  with httpx.Client(timeout=120) as c:
    with c.stream('POST', f'{apar_server.url}/v1/chat/completions', content=body,
                  headers={'content-type': 'application/json'}) as streamed:
      next(streamed.iter_lines())
  wait_for(lambda: metric(apar_server, 'apar_cancelled_requests_total') == before + 1)
  stats = apar_server.worker.engine.page_stats()
  assert stats['free_pages_end'] == stats['num_pages']
  assert stats['min_refcount_end'] == 0 == stats['max_refcount_end']


def test_non_streamed_client_gone_is_cancelled(ar_server):
  before = metric(ar_server, 'apar_cancelled_requests_total')
  with pytest.raises(httpx.TimeoutException):
    post(ar_server, json.dumps({'messages': MESSAGES, 'max_tokens': 256, 'temperature': 0}),
         timeout=0.05)
  wait_for(lambda: metric(ar_server, 'apar_cancelled_requests_total') == before + 1)
  wait_for(lambda: metric(ar_server, 'apar_requests_in_flight') == 0)
  stats = ar_server.worker.engine.page_stats()
  assert stats['free_pages_end'] == stats['num_pages']


def test_health_models_and_metrics(ar_server):
  health = httpx.get(f'{ar_server.url}/health')
  assert health.status_code == 200 and health.json()['status'] == 'ok'
  models = httpx.get(f'{ar_server.url}/v1/models').json()
  assert [m['id'] for m in models['data']] == ['tiny']
  assert httpx.get(f'{ar_server.url}/v1/models/tiny').json()['id'] == 'tiny'
  post(ar_server, json.dumps({'messages': MESSAGES, 'max_tokens': 3}))
  text = httpx.get(f'{ar_server.url}/metrics').text
  for name in ('apar_requests_total', 'apar_generated_tokens_total', 'apar_decode_steps_total',
               'apar_forks_total', 'apar_queue_depth', 'apar_kv_pages_in_use',
               'apar_time_to_first_token_seconds_bucket', 'apar_request_latency_seconds_bucket'):
    assert name in text
  assert metric(ar_server, 'apar_kv_pages_total') == ar_server.worker.engine.caps.num_pages


def test_requests_before_the_engine_compiled_get_503():
  from apar_jax.serving.launch import ServerThread, build_server
  server = ServerThread(build_server(tiny_config(), 'ar'))
  engine, compiled = server.worker.engine, threading.Event()
  warmup = engine.warmup
  engine.warmup = lambda: (compiled.wait(120), warmup())  # hold the compile until released
  server.start()
  try:
    health = httpx.get(f'{server.url}/health')
    assert health.status_code == 503 and health.json()['status'] == 'compiling'
    r = post(server, json.dumps({'messages': MESSAGES}))
    assert r.status_code == 503 and r.headers['retry-after'] == '1'
    assert 'compiling' in r.json()['error']['message']
    compiled.set()
    assert server.worker.wait_ready(300)
    assert httpx.get(f'{server.url}/health').status_code == 200
    assert post(server, json.dumps({'messages': MESSAGES, 'max_tokens': 2})).status_code == 200
  finally:
    compiled.set()
    server.stop()


def test_an_engine_failure_answers_500_then_503_and_health_says_failed():
  from apar_jax.serving.launch import ServerThread, build_server
  server = ServerThread(build_server(tiny_config(), 'ar'))
  engine = server.worker.engine

  def broken(feed, **kwargs):  # the engine dies once a request arrives (a lost device, say)
    del kwargs
    feed.wait(0.0)
    raise RuntimeError('device lost')
    yield  # noqa: unreachable (a generator, as Engine.serve)

  engine.serve = broken
  server.start()
  try:
    assert server.worker.wait_ready(300) is True
    r = post(server, json.dumps({'messages': MESSAGES, 'max_tokens': 2}))
    assert r.status_code == 500 and r.json()['error']['code'] == 'engine_failed'
    assert 'device lost' in r.json()['error']['message']
    health = httpx.get(f'{server.url}/health')
    assert health.status_code == 503 and health.json()['status'] == 'failed'
    again = post(server, json.dumps({'messages': MESSAGES, 'max_tokens': 2}))
    assert again.status_code == 503 and 'device lost' in again.json()['error']['message']
  finally:
    server.stop()
