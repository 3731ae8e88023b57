"""Benchmarks: `python -m bench NAME [options]`; results are appended to BENCHMARKS.md."""
