"""The decoding engine: paged KV cache, static branch slots, one jitted while-loop per chunk.

Every mode (AR, APAR, a drafter alone or with APAR) with continuous batching; see docs/engine.md.
Three layers: `device/` (what runs inside the jitted loop), `host/` (the `Engine`, its scheduler and
requests) and `setup/` (capacities, drafter and trees resolved once; `build_engine`).
"""

from apar_jax.engine.host.engine import Engine
from apar_jax.modes import MODES
from apar_jax.engine.host.requests import ChunkEvent, DoneEvent, Request, Result, TokensEvent
from apar_jax.engine.device.state import Capacities, EngineState
from apar_jax.engine.device.token_choice import ControlIds
from apar_jax.engine.host.tree_reassembly import Branch, reassemble, tree_signature
from apar_jax.engine.setup.build import build_engine, engine_for, sized_config

__all__ = ['MODES', 'Engine', 'ChunkEvent', 'DoneEvent', 'Request', 'Result', 'TokensEvent',
           'Capacities', 'EngineState', 'ControlIds', 'Branch', 'reassemble', 'tree_signature',
           'build_engine', 'engine_for', 'sized_config']
