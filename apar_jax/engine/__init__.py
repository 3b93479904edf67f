"""The decoding engine: paged KV cache, static branch slots, one jitted while-loop per chunk.

AR and APAR decoding with continuous batching; see docs/engine.md.
"""

from apar_jax.engine.engine import Engine
from apar_jax.modes import MODES
from apar_jax.engine.requests import ChunkEvent, DoneEvent, Request, Result, TokensEvent
from apar_jax.engine.state import Capacities, EngineState
from apar_jax.engine.token_choice import ControlIds
from apar_jax.engine.tree_reassembly import Branch, reassemble, tree_signature

__all__ = ['MODES', 'Engine', 'ChunkEvent', 'DoneEvent', 'Request', 'Result', 'TokensEvent',
           'Capacities', 'EngineState', 'ControlIds', 'Branch', 'reassemble', 'tree_signature']
