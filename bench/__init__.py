"""Benchmarks and their baselines: reproducible commands that print their figures."""
