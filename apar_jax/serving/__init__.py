"""The OpenAI-compatible server: `python -m apar_jax serve` (see docs/serving.md).

`EngineWorker` runs one engine in a background thread (continuous batching over a live feed);
`create_app` puts the HTTP API on it (`engine.stable_text` turns a decoding branch tree into text).
"""

from apar_jax.serving.app import ServeSettings, create_app
from apar_jax.serving.worker import EngineWorker

__all__ = ['EngineWorker', 'ServeSettings', 'create_app']
