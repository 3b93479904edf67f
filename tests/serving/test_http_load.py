"""The HTTP serving load (`bench.http_load`) against a live server: every request completes and the
figures count what the server answered."""

import asyncio

import httpx

from apar_jax.bench.http_load import http_load
from apar_jax.bench.http_serving import markdown
from serving_testlib import PROMPTS


def test_http_load_counts_what_the_server_answered(ar_server):
  arrivals = [0.0, 0.05, 0.1, 0.3]
  figures = asyncio.run(http_load(ar_server.url, PROMPTS, arrivals, max_tokens=8))
  want = sum(httpx.post(f'{ar_server.url}/v1/chat/completions', timeout=60, json={
      'messages': [{'role': 'user', 'content': p}], 'max_tokens': 8, 'temperature': 0}).json()
      ['usage']['completion_tokens'] for p in PROMPTS)
  assert figures['completed'] == 4 and figures['generated_tokens'] == want
  assert figures['duration_s'] >= 0.3 and figures['throughput_tps'] > 0
  lat, ttft = figures['latency_s'], figures['ttft_s']
  assert 0 < ttft['p50'] <= lat['p50'] <= lat['p90'] <= lat['p99']
  row = {k: 1.0 for k in ('throughput_tps', 'latency_p50', 'latency_p90', 'latency_p99',
                          'ttft_p50', 'ttft_p90', 'generated_tokens', 'forks')}
  table = markdown({'ar (HTTP)': row, 'apar (HTTP)': dict(row, throughput_tps=1.5)})
  assert '| apar (HTTP) | 1.5 | 1.50 |' in table
