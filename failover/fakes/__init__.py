"""Fakes of the outside world for tests, the demo and benchmarks (real servers on 127.0.0.1)."""
