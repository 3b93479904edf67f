"""Benchmark harness: every decoding mode and its peers on the same prompts and weights, in one run.

    python -m apar_jax bench --config=configs/smollm2_135m.py --modes=ar,apar

`harness.run_bench(runtime, settings)` measures (batch-1 latency per mode and peer, serving under
a Poisson load, the memory roofline, an APAR branch timeline) and returns one JSON-serialisable
report;
`report.py` writes it as JSON and Markdown, `plots.py` draws the PNGs. See docs/bench_harness.md.
Modules are imported where used (matplotlib and torch only when plotting / running peers).
"""
