//! Shared by the optimize/verify tests: tiny replicas copied into temporary folders, and test-only
//! passes (an exact no-op rewrite, a planted non-equivalent one, an approximate weight rounding,
//! moving the emap) with a resolver that knows them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Result};
use faceperf::models::{synth, Role, Scale};
use faceperf::onnx::{Model, Tensor, TensorData};
use faceperf::optimize::{OptimizeOptions, PassResolver};
use faceperf::rewrite::recipe::Recipe;
use faceperf::rewrite::{Pass, PassContext, PassReport};
use faceperf::verify::VerifyOptions;

/// `role`'s tiny replica, copied into a fresh temporary folder (variants get written beside it).
pub fn tiny(role: Role) -> (tempfile::TempDir, PathBuf) {
    let src = synth::replica_path(role, Scale::Tiny).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(role.default_file());
    std::fs::copy(&src, &dst).unwrap();
    (dir, dst)
}

/// Index of the `k`-th Conv node (0-based).
pub fn kth_conv(m: &Model, k: usize) -> usize {
    m.graph().node.iter().enumerate().filter(|(_, n)| n.op_type == "Conv").nth(k).unwrap().0
}

/// Exact: routes the first Conv's output through an Identity (one node more, same values).
pub struct IdentityInsert;
impl Pass for IdentityInsert {
    fn name(&self) -> &'static str {
        "identity-insert"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, m: &mut Model, _: &PassContext) -> Result<PassReport> {
        let before = m.graph().node.len();
        let i = kth_conv(m, 0);
        let g = m.graph_mut();
        let out = g.node[i].output[0].clone();
        let pre = format!("{out}__pre_identity");
        g.node[i].output[0] = pre.clone();
        let id = faceperf::onnx::proto::NodeProto {
            name: "test_identity".into(),
            op_type: "Identity".into(),
            input: vec![pre],
            output: vec![out],
            ..Default::default()
        };
        g.node.insert(i + 1, id);
        Ok(PassReport { nodes_before: before, nodes_after: before + 1, rewritten: 1, ..Default::default() })
    }
}

/// Claims to be exact but scales the bias of Conv number [`PLANTED_CONV`] by 1.5.
pub struct PlantedBias;
/// Which Conv the planted pass breaks (a middle one, so earlier nodes must be found equal).
pub const PLANTED_CONV: usize = 3;
impl Pass for PlantedBias {
    fn name(&self) -> &'static str {
        "planted-bias"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, m: &mut Model, _: &PassContext) -> Result<PassReport> {
        let n = m.graph().node.len();
        let i = kth_conv(m, PLANTED_CONV);
        let bias = m.graph().node[i].input[2].clone();
        let g = m.graph_mut();
        let t = g.initializer.iter_mut().find(|t| t.name == bias).unwrap();
        let mut v = Tensor::from_proto(t)?;
        let TensorData::F32(x) = &mut v.data else { bail!("bias is not f32") };
        x.iter_mut().for_each(|b| *b = *b * 1.5 + 0.1);
        *t = v.to_proto(&bias);
        Ok(PassReport { nodes_before: n, nodes_after: n, rewritten: 1, ..Default::default() })
    }
}

/// Approximate: rounds every float32 initializer to the nearest float16 value (kept as float32);
/// with `noise`, also adds 0.5 to the first Conv's bias (a clearly broken approximation).
pub struct RoundWeights {
    pub broken: bool,
}
impl Pass for RoundWeights {
    fn name(&self) -> &'static str {
        if self.broken {
            "round-weights-broken"
        } else {
            "round-weights"
        }
    }
    fn exact(&self) -> bool {
        false
    }
    fn run(&self, m: &mut Model, _: &PassContext) -> Result<PassReport> {
        let n = m.graph().node.len();
        let broken_bias =
            if self.broken { Some(m.graph().node[kth_conv(m, PLANTED_CONV)].input[2].clone()) } else { None };
        let last = m.graph().initializer.len() - 1;
        let mut count = 0;
        for (j, t) in m.graph_mut().initializer.iter_mut().enumerate() {
            // The swapper's emap is data for callers, not compute: keep it exactly.
            if j == last {
                continue;
            }
            let Ok(mut v) = Tensor::from_proto(t) else { continue };
            if let TensorData::F32(x) = &mut v.data {
                x.iter_mut().for_each(|w| *w = half::f16::from_f32(*w).to_f32());
                if broken_bias.as_deref() == Some(t.name.as_str()) {
                    x.iter_mut().for_each(|w| *w += 0.5);
                }
                *t = v.to_proto(&t.name.clone());
                count += 1;
            }
        }
        Ok(PassReport { nodes_before: n, nodes_after: n, rewritten: count, ..Default::default() })
    }
}

/// Claims to be exact, but moves the last initializer (the swapper's `emap`) to the front.
pub struct MoveLastInitializer;
impl Pass for MoveLastInitializer {
    fn name(&self) -> &'static str {
        "move-emap"
    }
    fn exact(&self) -> bool {
        true
    }
    fn run(&self, m: &mut Model, _: &PassContext) -> Result<PassReport> {
        let n = m.graph().node.len();
        let g = m.graph_mut();
        let t = g.initializer.pop().unwrap();
        g.initializer.insert(0, t);
        Ok(PassReport { nodes_before: n, nodes_after: n, rewritten: 1, ..Default::default() })
    }
}

/// Knows the test passes, then the registry.
pub fn resolver() -> PassResolver {
    Arc::new(|name: &str| -> Result<Box<dyn Pass>> {
        Ok(match name {
            "identity-insert" => Box::new(IdentityInsert),
            "planted-bias" => Box::new(PlantedBias),
            "round-weights" => Box::new(RoundWeights { broken: false }),
            "round-weights-broken" => Box::new(RoundWeights { broken: true }),
            "move-emap" => Box::new(MoveLastInitializer),
            other => return faceperf::rewrite::pass_by_name(other),
        })
    })
}

/// A recipe running `passes` (names), with `extra` TOML appended (model sections).
pub fn recipe(target: &str, passes: &[&str], extra: &str) -> Recipe {
    let mut text = format!("target = \"{target}\"\ndescription = \"test\"\nsuffix = \"_{target}\"\n");
    for p in passes {
        text.push_str(&format!("\n[[pass]]\nname = \"{p}\"\n"));
    }
    text.push_str(extra);
    Recipe::parse(&text, &format!("{target}.toml")).unwrap()
}

/// Options for tests: the test resolver, one thread, 8 cases, quiet.
pub fn options() -> OptimizeOptions {
    OptimizeOptions {
        resolver: resolver(),
        verify: VerifyOptions { threads: 1, ..Default::default() },
        ..Default::default()
    }
}

/// The ORT runtime.
pub fn rt() -> &'static faceperf::runtime::Runtime {
    faceperf::runtime::init(None).unwrap()
}
