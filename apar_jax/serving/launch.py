"""Building a server from a config, and running it: in the foreground (`serve` command) or in a
background thread on a local port (tests, notebooks, the HTTP load bench).

    server = ServerThread(build_server(config, 'apar'), port=0)   # 0: a free port
    server.start(); server.worker.wait_ready()
    ...  # http://127.0.0.1:{server.port}/v1
    server.stop()
"""

import dataclasses
import threading
import time
from typing import Any, Optional

import fastapi
import ml_collections
import uvicorn

from apar_jax.serving.app import ServeSettings, create_app
from apar_jax.serving.worker import EngineWorker


@dataclasses.dataclass
class Server:
  app: fastapi.FastAPI
  worker: EngineWorker
  settings: ServeSettings


def settings_from_config(config: ml_collections.ConfigDict, mode: str) -> ServeSettings:
  """The API's names and defaults: those `generate` uses for this config."""
  gen, tok = config.generate, config.tokenizer
  return ServeSettings(model_name=str(config.name), mode=mode, chat_template=tok.chat_template,
                       system_prompt=tok.system_prompt, temperature=float(gen.temperature), top_p=float(gen.top_p),
                       top_k=int(gen.top_k), seed=int(config.seed))


def build_server(config: ml_collections.ConfigDict, mode: str, *, max_waiting: int = 64,
                 runtime: Any = None) -> Server:
  """Loads the model for `mode` (APAR modes: the APAR adapter, as `generate`), builds its engine
  from `config.engine` and the app around it. With `runtime` (weights and tokenizer already loaded
  for this mode) nothing is loaded and `config` only sizes the engine and names the model. The
  worker is not started."""
  import jax
  from apar_jax.engine.setup.build import build_engine
  from apar_jax.mode_weights import config_for_mode
  from apar_jax.runtime import load_runtime
  if jax.process_count() > 1:
    raise ValueError('serve runs in a single process; start one server per host')
  if runtime is None:
    runtime = load_runtime(config_for_mode(config, mode))
    config = runtime.config
  engine = build_engine(config, mode, params=runtime.params, tokenizer=runtime.tokenizer,
                        mesh=runtime.mesh)
  worker = EngineWorker(engine, max_waiting)
  settings = settings_from_config(config, mode)
  return Server(create_app(worker, settings), worker, settings)


class ServerThread:
  """Uvicorn serving `server.app` from a daemon thread; `port=0` picks a free port."""

  def __init__(self, server: Server, host: str = '127.0.0.1', port: int = 0,
               log_level: str = 'warning'):
    self.server, self.worker, self.host = server, server.worker, host
    self._uvicorn = uvicorn.Server(uvicorn.Config(server.app, host=host, port=port,
                                                  log_level=log_level, lifespan='off'))
    self._thread = threading.Thread(target=self._uvicorn.run, name='apar-http', daemon=True)
    self.port: Optional[int] = None

  @property
  def url(self) -> str:
    return f'http://{self.host}:{self.port}'

  def start(self, timeout: float = 30.0) -> None:
    """Starts the engine worker (it compiles in the background) and the HTTP server."""
    self.worker.start()
    self._thread.start()
    deadline = time.monotonic() + timeout
    while not self._uvicorn.started:
      if not self._thread.is_alive() or time.monotonic() > deadline:
        raise RuntimeError(f'the HTTP server did not start on {self.host}')
      time.sleep(0.01)
    self.port = self._uvicorn.servers[0].sockets[0].getsockname()[1]

  def stop(self) -> None:
    self._uvicorn.should_exit = True
    self._thread.join(30)
    self.worker.stop()
