//! Any byte string through the model core: parse, index, order, infer shapes, summarise, rewrite.
//! Errors are fine; panics, hangs and aborts are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    faceperf::fuzzing::exercise_model_bytes(data);
});
