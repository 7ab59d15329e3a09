//! Small shared utilities: hashing, hardware facts, progress bars, deterministic randomness.

pub mod assets;
pub mod hash;
pub mod hw;
pub mod paths;
pub mod progress;
pub mod rng;
