"""Runnable benchmarks (``python benchmarks/<script>.py [--quick]``) and their helpers."""
