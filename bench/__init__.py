"""Benchmarks against reference tools, run side by side; figures go to BENCHMARKS.md."""
