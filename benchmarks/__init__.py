"""Benchmarks: `python -m benchmarks.run` (or `make bench`) measures Rigi against bare baselines."""
