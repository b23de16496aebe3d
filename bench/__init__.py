"""Benchmarks of the adapter registry, side by side with MLflow's model registry where one applies.

Run all of them with ``make bench`` (``python -m bench.run_all``) or one with
``python -m bench.<name> [--quick]``. Each prints a table and writes ``bench/out/<name>.json``.
Nothing here is a test: no figure is asserted, targets are only reported as met or missed.
"""
