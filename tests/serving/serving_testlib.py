"""Shared by the serving tests: prompts, the forking tiny runtime, starting a server."""

import jax
import jax.numpy as jnp
import numpy as np

from apar_jax.defaults import presets
from apar_jax.engine.host.cli_api import generate_records
from apar_jax.model import build_model
from apar_jax.runtime import Runtime, load_model_params, load_tokenizer_from_config
from apar_jax.serving.launch import ServerThread, build_server
from apar_jax.tokenization import encode_user_prompt

PROMPTS = ['Hello there', 'List three fruits.', 'How do I bake bread?', 'Name a colour.']


def tiny_config(row_buckets: bool = False):
  """configs/tiny.py; row buckets off unless asked for (one chunk compile per server)."""
  config = presets.tiny()
  config.engine.row_buckets = row_buckets
  return config


def chat_ids(tokenizer, config, prompt: str) -> list[int]:
  """The prompt as `generate` renders it."""
  return encode_user_prompt(tokenizer, prompt, config.tokenizer)


def tiny_runtime() -> Runtime:
  """configs/tiny.py loaded as `generate` loads it."""
  config = tiny_config(row_buckets=True)
  return Runtime(config, build_model(config.model), load_model_params(config),
                 load_tokenizer_from_config(config), None)


def forky_runtime() -> Runtime:
  """configs/tiny.py with `[Fork]` and EOS made likely after some of the tokens its random model
  writes (the head column of each points along those tokens' embeddings): APAR answers fork 1-7
  times on PROMPTS within 24 tokens per branch."""
  config = tiny_config(row_buckets=True)  # the APAR server runs with buckets, as deployed
  tokenizer = load_tokenizer_from_config(config)
  params = jax.tree.map(np.asarray, load_model_params(config))
  # The first distinct tokens the unmodified model writes on PROMPTS (greedy): the triggers.
  plain = Runtime(config, build_model(config.model), jax.tree.map(jnp.asarray, params), tokenizer,
                  None)
  records = generate_records(plain, 'ar', PROMPTS, [chat_ids(tokenizer, config, p) for p in PROMPTS],
                             max_new_tokens=24, warmup=False)
  writes = list(dict.fromkeys(t for r in records for t in r['token_ids']))[:20]
  emb, head = params['embed']['embedding'], params['lm_head']['kernel'].copy()

  def column(tokens, gain=0.1):
    v = sum(emb[t] / np.linalg.norm(emb[t]) for t in tokens)
    return gain * v / np.linalg.norm(v) * np.sqrt(len(tokens))

  head[:, tokenizer.fork_id] = column(writes[::3])
  head[:, tokenizer.stop_ids[0]] = column(writes[1::7])
  params['lm_head'] = {'kernel': head}
  return Runtime(config, build_model(config.model), jax.tree.map(jnp.asarray, params), tokenizer,
                 None)


def start(config, mode, runtime=None, **kwargs) -> ServerThread:
  server = ServerThread(build_server(config, mode, runtime=runtime, **kwargs))
  server.start()
  assert server.worker.wait_ready(300), server.worker.failure
  return server
