"""Benchmarks: a dataset builder (build_dataset.py) and the suite (run.py). See README.md."""
