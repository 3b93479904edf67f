"""Numerics for tests and device checks: how far two computation orders may differ."""
