//! Model I/O, external data, round trips through ORT, and clear errors on bad files.

use std::collections::HashMap;

use faceperf::onnx::graph::attr;
use faceperf::onnx::summary::summarize;
use faceperf::onnx::{DataLayout, GraphBuilder, Model, Tensor};
use faceperf::runtime::{self, session::ModelSource, SessionConfig, SessionRunner};
use faceperf::util::rng::Rng;
use prost::Message;

/// A small conv net with an `emap`-style last initializer.
fn small_model() -> Model {
    let mut rng = Rng::new(3);
    let mut b = GraphBuilder::new("small");
    let x = b.input_f32("x", &[1, 3, 16, 16]);
    let w = b.init("w", &Tensor::f32(&[16, 3, 3, 3], rng.vec(432, -0.5, 0.5)));
    let bias = b.init("b", &Tensor::f32(&[16], rng.vec(16, -0.1, 0.1)));
    let c = b.op("Conv", &[&x, &w, &bias], &[attr::ints("pads", &[1, 1, 1, 1])]);
    let r = b.op("Relu", &[&c], &[]);
    let g = b.op("GlobalAveragePool", &[&r], &[]);
    let f = b.op("Flatten", &[&g], &[]);
    b.node("Identity", &[&f], &["y"], &[]);
    b.output_f32("y", &[1, 16]);
    b.init_named("emap", &Tensor::f32(&[4, 4], rng.vec(16, -1.0, 1.0)));
    b.build(13)
}

fn run_cpu(m: ModelSource<'_>) -> Vec<(String, Tensor)> {
    let rt = runtime::init(None).expect("ORT available (run ci/setup-ort.sh)");
    let mut s = SessionRunner::new(rt, m, &SessionConfig::cpu(1)).unwrap();
    let x = Tensor::f32(&[1, 3, 16, 16], Rng::new(9).vec(768, 0.0, 1.0));
    s.run(&[("x".into(), x)]).unwrap()
}

#[test]
fn save_load_roundtrip_is_equal_and_runs_identically() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model();
    let p = dir.path().join("m.onnx");
    m.save(&p, DataLayout::Inline).unwrap();
    let back = Model::load(&p).unwrap();
    assert_eq!(back.proto, m.proto);
    let p2 = dir.path().join("m2.onnx");
    back.save(&p2, DataLayout::Inline).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), std::fs::read(&p2).unwrap(), "save is deterministic");
    let a = run_cpu(ModelSource::File(&p));
    let b = run_cpu(ModelSource::Bytes(&back.to_bytes()));
    assert_eq!(a, b);
    assert_eq!(a[0].1.dims, vec![1, 16]);
}

#[test]
fn external_data_roundtrip_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let m = small_model();
    let p = dir.path().join("ext.onnx");
    m.save(&p, DataLayout::External).unwrap();
    let data = dir.path().join("ext.onnx.data");
    assert!(data.exists());
    // Tensors of 1 KiB or more go to the data file, smaller ones stay inline.
    let raw = faceperf::onnx::proto::ModelProto::decode(&std::fs::read(&p).unwrap()[..]).unwrap();
    let external: Vec<(String, bool)> =
        raw.graph.unwrap().initializer.iter().map(|t| (t.name.clone(), t.data_location == 1)).collect();
    assert_eq!(external, vec![("w_1".into(), true), ("b_2".into(), false), ("emap".into(), false)]);
    let back = Model::load(&p).unwrap();
    assert_eq!(back.proto, m.proto, "external tensors are read back into memory");
    // ORT reads the same file with its external data.
    assert_eq!(run_cpu(ModelSource::File(&p)), run_cpu(ModelSource::Bytes(&m.to_bytes())));
    let s = summarize(&back, &HashMap::new()).unwrap();
    assert_eq!(s.last_initializer.as_deref(), Some("emap"));
    assert_eq!(s.parameters, 432 + 16 + 16);
    assert_eq!(s.macs, 16 * 16 * 16 * 27);
    std::fs::remove_file(&data).unwrap();
    let e = format!("{:#}", Model::load(&p).unwrap_err());
    assert!(e.contains("ext.onnx.data is missing"), "{e}");
}

#[test]
fn corrupt_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.onnx");
    std::fs::write(&empty, b"").unwrap();
    let e = format!("{:#}", Model::load(&empty).unwrap_err());
    assert!(e.contains("empty.onnx: file is empty"), "{e}");

    let bytes = small_model().to_bytes();
    let trunc = dir.path().join("trunc.onnx");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", Model::load(&trunc).unwrap_err());
    assert!(e.contains("trunc.onnx: not a valid ONNX model"), "{e}");

    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>()).unwrap();
    let e = format!("{:#}", Model::load(&junk).unwrap_err());
    assert!(e.contains("junk.onnx: not a valid ONNX model"), "{e}");
}
