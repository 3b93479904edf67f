"""The engine's device code: what runs inside the jitted decode loop (state, page allocator, forks,
the one step function of every mode, the loop, data shards). It never imports the host side, the
runtime or the tokenizer (an import-linter contract in pyproject.toml)."""
