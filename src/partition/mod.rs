//! Partition planner: predicts how an execution provider splits a model, per ORT version.
