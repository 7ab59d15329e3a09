//! Benchmarks: timing, statistics, results with provenance.
