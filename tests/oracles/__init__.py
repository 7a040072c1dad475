"""Python references of the Rust hot path, for the differential tests and benchmarks."""
