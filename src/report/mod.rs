//! Reports: tables and plots from `bench-results/`.
