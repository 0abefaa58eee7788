"""Benchmarks: diffrend timed against reference renderers."""
