"""The server's Prometheus metrics, in a registry of its own (several apps in one process, as in the
tests, do not collide). Engine-side figures are updated by the engine thread after every chunk;
prometheus-client's metrics are thread-safe."""

import prometheus_client as prom

# Seconds: from a few chunks on a CPU to long APAR answers.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)


class ServerMetrics:
  """Counters, gauges and histograms behind `GET /metrics`."""

  def __init__(self, kv_pages_total: int):
    self.registry = prom.CollectorRegistry()
    r = self.registry
    self.requests = prom.Counter('apar_requests', 'HTTP requests answered, by endpoint and status',
                                 ('endpoint', 'status'), registry=r)
    self.prompt_tokens = prom.Counter('apar_prompt_tokens', 'Prompt tokens of finished requests',
                                      registry=r)
    self.generated_tokens = prom.Counter('apar_generated_tokens',
                                         'Answer tokens of finished requests (control tokens '
                                         'excluded)', registry=r)
    self.decode_steps = prom.Counter('apar_decode_steps', 'Engine decode steps (all requests '
                                     'together: one step decodes every live branch)', registry=r)
    self.request_steps = prom.Counter('apar_request_decode_steps', 'Decode steps of finished '
                                      'requests, summed per request', registry=r)
    self.forks = prom.Counter('apar_forks', 'APAR branches spawned by finished requests',
                              registry=r)
    self.cancelled = prom.Counter('apar_cancelled_requests', 'Requests cancelled mid-answer '
                                  '(client gone or stop sequence)', registry=r)
    self.queue_depth = prom.Gauge('apar_queue_depth', 'Requests waiting for admission', registry=r)
    self.in_flight = prom.Gauge('apar_requests_in_flight', 'Requests admitted and decoding',
                                registry=r)
    self.live_branches = prom.Gauge('apar_live_branches', 'Branches decoding after the last chunk',
                                    registry=r)
    self.kv_pages_in_use = prom.Gauge('apar_kv_pages_in_use', 'KV pages allocated after the last '
                                      'chunk', registry=r)
    self.kv_pages_total = prom.Gauge('apar_kv_pages_total', 'KV pages in the pool', registry=r)
    self.kv_pages_total.set(kv_pages_total)
    self.ttft = prom.Histogram('apar_time_to_first_token_seconds', 'From arrival to the first '
                               'decoded token', buckets=LATENCY_BUCKETS, registry=r)
    self.latency = prom.Histogram('apar_request_latency_seconds', 'From arrival to the last token',
                                  buckets=LATENCY_BUCKETS, registry=r)

  def exposition(self) -> bytes:
    """The text format `GET /metrics` returns."""
    return prom.generate_latest(self.registry)
