"""Local stand-ins for cloud services, used by the demo, the tests and the benchmarks."""
