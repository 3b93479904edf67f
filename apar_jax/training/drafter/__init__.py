"""Training the speculative drafters (Medusa heads, Hidden Transfer maps) on a frozen base model:
self-distilled data (`self_distill`, `prompt_bank`), frozen base features (`data`), losses
(`objectives`) and the resumable loop (`trainer`). The drafters themselves, as the engine runs them,
live in `apar_jax.speculative`."""
