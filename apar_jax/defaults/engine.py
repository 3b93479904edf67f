"""Default capacities of the decoding engine (`config.engine`).

Every field is static: changing one recompiles the engine. Memory of the KV pool is
`(num_pages + 1) * page_size * n_kv_heads * head_dim * 2 * n_layers * bytes` (one extra sink page).
"""

import ml_collections


def engine_config(**overrides) -> ml_collections.ConfigDict:
  """The `engine` section of a config; `overrides` replace defaults."""
  engine = ml_collections.ConfigDict(dict(
      max_slots=16,            # S: branches of all requests decoded together (rows of a step)
      num_pages=512,           # P: KV pages per layer shared by every slot
      page_size=16,            # tokens per page
      pages_per_slot=64,       # table width: a branch holds at most pages_per_slot*page_size tokens
      max_requests=8,          # R: requests in flight at once (others wait in the host queue)
      max_new_tokens=256,      # per-branch output buffer; a request may not ask for more
      chunk_steps=16,          # decode steps per device call (host admits/drains between chunks)
      prefill_chunk=64,        # prompt tokens per prefill call
      max_live_branches=32,    # per request, the root included (APAR authors' default)
      max_depth=1,             # fork levels below the root: 1 = children never fork (as trained)
      fork_copies_per_step=4,  # partial pages copied for new children per step (others wait a step)
      attention_impl='auto',   # 'auto' | 'reference' | 'pallas' | 'pallas_interpret'
      row_buckets=True,        # forward on a bucket of 1, 2, 4, ... rows holding the live branches
  ))
  engine.update(overrides)
  return engine
