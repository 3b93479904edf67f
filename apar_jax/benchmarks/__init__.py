"""Benchmark commands: each prints figures measured in one run (ratios, not absolute promises)."""
