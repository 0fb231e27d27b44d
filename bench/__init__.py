"""Benchmarks (not tests): throughput, latency, failover. `python -m bench` runs them all."""
