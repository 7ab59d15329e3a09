//! Inputs that once crashed the model core (found by `cargo fuzz`, kept in `fuzz/regressions/`), plus a
//! deterministic mutation smoke test so CI exercises the same code paths without a fuzzer.

use faceperf::fuzzing::exercise_model_bytes;
use faceperf::models::{synth, Role, Scale};
use faceperf::util::rng::Rng;

#[test]
fn committed_crash_inputs_no_longer_crash() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            continue;
        }
        exercise_model_bytes(&std::fs::read(&path).unwrap());
        n += 1;
    }
    eprintln!("{n} regression inputs replayed");
}

/// Byte flips, truncations, splices and varint-sized insertions of valid replica models.
#[test]
fn mutated_models_never_panic() {
    let seeds: Vec<Vec<u8>> = [Role::Detector, Role::Swapper, Role::Enhancer]
        .into_iter()
        .map(|r| synth::synth_skeleton(r, Scale::Tiny).unwrap().to_bytes())
        .collect();
    let mut rng = Rng::new(20261125);
    for i in 0..600 {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len().max(1));
            match rng.below(4) {
                0 => b[at] ^= 1 << rng.below(8),
                1 => b.truncate(at),
                2 => {
                    let other = &seeds[rng.below(seeds.len())];
                    let from = rng.below(other.len());
                    let len = rng.below(64).min(other.len() - from);
                    b.splice(at..at, other[from..from + len].iter().copied());
                }
                _ => b[at] = [0x00, 0x7f, 0x80, 0xff][rng.below(4)],
            }
            if b.is_empty() {
                break;
            }
        }
        exercise_model_bytes(&b);
    }
}
