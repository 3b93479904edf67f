"""Test helpers shared by the tests, the device check and the benchmarks: numerics (how far two
computation orders may differ), the tiny engine model, and the speculative reference decoder."""
