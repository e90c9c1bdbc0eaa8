"""Benchmarks for the performance goals: `python -m bench.run` (`make bench`).

The services (moto server, the ZEGO emulator) and every measured function run in processes of
their own; each figure is a ratio against a baseline measured in the same run.
"""
