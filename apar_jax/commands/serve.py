"""`python -m apar_jax serve`: the OpenAI-compatible HTTP server (docs/serving.md).

    python -m apar_jax serve --config=configs/apar_smollm2_135m.py --mode=apar --port=8000
"""

import sys

import ml_collections

from apar_jax import cli_flags
from apar_jax.commands.generate import check_mode


def run(config: ml_collections.ConfigDict) -> None:
  mode = cli_flags.MODE.value
  check_mode(mode)
  if not 0 <= cli_flags.PORT.value < 65536:
    raise ValueError(f'--port must be in 0..65535, got {cli_flags.PORT.value}')
  if cli_flags.MAX_WAITING.value < 1:
    raise ValueError(f'--max_waiting must be >= 1, got {cli_flags.MAX_WAITING.value}')
  try:
    import uvicorn
    from apar_jax.serving.launch import build_server
  except ImportError as e:
    raise ValueError(f'serve needs the web stack ({e.name} is missing): '
                     "pip install 'apar-jax[serve]'") from e
  server = build_server(config, mode, max_waiting=cli_flags.MAX_WAITING.value)
  host, port = cli_flags.HOST.value, cli_flags.PORT.value
  print(f'[serve] {server.settings.model_name} in {mode} mode on http://{host}:{port}/v1 '
        '(compiling first: GET /health answers 200 when ready)', file=sys.stderr)
  server.worker.start()
  try:
    # Streams still open at Ctrl-C get 10 s to finish; then the worker cancels what is left.
    uvicorn.run(server.app, host=host, port=port, log_level='info', timeout_graceful_shutdown=10)
  finally:
    server.worker.stop()
