//! The live face-swap pipeline: sources, stages, scheduler, sinks, and measurement.

pub mod align;
pub mod detect;
pub mod frame;
pub mod net;
pub mod paste;
