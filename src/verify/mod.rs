//! Numerical equivalence of an original and a rewritten model, run side by side with ORT CPU.
