"""The fan-out benchmark suite (bench/README.md) and the store and compression benchmarks."""
