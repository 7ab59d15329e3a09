//! The live face-swap pipeline: sources, stages, scheduler, sinks, and measurement.
