"""The serving load over HTTP: Poisson arrivals of streamed chat requests against an OpenAI-compatible
server (ours or any other), timed on the client.

    figures = asyncio.run(http_load(url, prompts, arrivals, max_tokens=48))

Per request: time to the first streamed text (TTFT), latency to the last event (both from its
scheduled arrival), and the server's `usage` (completion tokens). Throughput = completion tokens of
all requests / (last finish - first arrival), as the in-process load (`bench.serving.one_load`)
reports it, so the two sit side by side.
"""

import asyncio
import json
import logging
import time
from typing import Any, Optional, Sequence

import httpx

from apar_jax.bench.serving import percentiles

logging.getLogger('httpx').setLevel(logging.WARNING)  # one INFO line per request otherwise


async def _one(client: httpx.AsyncClient, url: str, prompt: str, arrival: float, t0: float,
               max_tokens: int, model: Optional[str]) -> dict[str, Any]:
  await asyncio.sleep(max(0.0, arrival - (time.perf_counter() - t0)))
  body = {'messages': [{'role': 'user', 'content': prompt}], 'max_tokens': max_tokens,
          'temperature': 0.0, 'stream': True, 'stream_options': {'include_usage': True}}
  if model is not None:
    body['model'] = model
  first: Optional[float] = None
  usage: dict[str, int] = {}
  decoding: dict[str, Any] = {}
  async with client.stream('POST', f'{url}/v1/chat/completions', json=body) as response:
    if response.status_code != 200:
      text = (await response.aread()).decode(errors='replace')
      raise RuntimeError(f'{url} answered {response.status_code}: {text[:300]}')
    async for line in response.aiter_lines():
      if not line.startswith('data: ') or line == 'data: [DONE]':
        continue
      chunk = json.loads(line[len('data: '):])
      if 'error' in chunk:
        raise RuntimeError(f'{url} failed mid-answer: {chunk["error"]["message"]}')
      choices = chunk.get('choices') or []
      if first is None and choices and (choices[0].get('delta') or {}).get('content'):
        first = time.perf_counter() - t0
      usage = chunk.get('usage') or usage
      decoding = chunk.get('decoding') or decoding
  done = time.perf_counter() - t0
  return {'arrival': arrival, 'first': first, 'done': done,
          'tokens': int(usage.get('completion_tokens', 0)), 'forks': int(decoding.get('forks', 0))}


async def http_load(url: str, prompts: Sequence[str], arrivals: Sequence[float], *,
                    max_tokens: int, model: Optional[str] = None,
                    timeout_s: float = 600.0) -> dict[str, Any]:
  """Sends `prompts[i]` at `arrivals[i]` seconds (streamed, greedy); the load's figures."""
  url = url.rstrip('/')
  limits = httpx.Limits(max_connections=len(prompts) + 1)
  async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:
    t0 = time.perf_counter()
    runs = await asyncio.gather(*(_one(client, url, p, a, t0, max_tokens, model)
                                  for p, a in zip(prompts, arrivals)))
  tokens = sum(r['tokens'] for r in runs)
  duration = max(r['done'] for r in runs) - min(arrivals)
  return {'completed': len(runs), 'generated_tokens': tokens,
          'forks': sum(r['forks'] for r in runs), 'duration_s': duration,
          'throughput_tps': tokens / duration if duration > 0 else None,
          'latency_s': percentiles([r['done'] - r['arrival'] for r in runs]),
          'ttft_s': percentiles([r['first'] - r['arrival'] for r in runs if r['first'] is not None])}
