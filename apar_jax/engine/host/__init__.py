"""The engine's host code: `Engine`, the scheduler (a generator of events), requests and results,
request feeds, branch-tree reassembly, stable text for streaming, draft control, the CLI's entry."""
