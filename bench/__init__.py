"""Benchmarks: one script per capability; figures recorded in bench/RESULTS.md."""
