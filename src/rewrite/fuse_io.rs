//! `fuse-io`: moves pre- and post-processing into the model, so it runs on the execution provider
//! (the GPU under CUDA) instead of the CPU, and so frames cross the bus as 8-bit pixels.
//!
//! An input `x` (float NCHW, normalised) becomes a uint8 NHWC input of the same name, followed by
//! `Cast → [channel swap] → Sub(mean) → Mul(1/std) → Transpose`. An image output `y` (float NCHW)
//! becomes uint8 NHWC through `Transpose → Mul(scale) → Add(offset) → [channel swap] → Round → Clip
//! → Cast`. The CPU reference ([`preprocess_reference`], [`postprocess_reference`]) uses the same
//! float operations in the same order, so the fused model is bit-identical to
//! `post(model(pre(frame)))`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::onnx::graph::attr;
use crate::onnx::proto::tensor_proto::DataType;
use crate::onnx::proto::{GraphProto, NodeProto, StringStringEntryProto};
use crate::onnx::shape::declared;
use crate::onnx::{builder::value_info, Dim, Model, Tensor, TensorData};

/// Model metadata key under which [`fuse_io`] records what it did (a JSON [`FuseIoSpec`]), so a
/// runtime knows the pixel order and layout the fused model takes without the recipe.
pub const METADATA_KEY: &str = "faceperf.fuse_io";

/// How a float image input is made from 8-bit pixels: `(pixel - mean) / std`, per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Graph input to replace.
    pub name: String,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Reverse the channel order (BGR frames into an RGB model, or the reverse).
    #[serde(default)]
    pub swap_channels: bool,
}

/// How an image output becomes 8-bit pixels: `clip(round(y * scale + offset), 0, 255)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Graph output to replace.
    pub name: String,
    pub scale: f32,
    pub offset: f32,
    #[serde(default)]
    pub swap_channels: bool,
}

/// The whole fusion: which inputs and outputs to convert.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct FuseIoSpec {
    #[serde(default)]
    pub inputs: Vec<InputSpec>,
    #[serde(default)]
    pub outputs: Vec<OutputSpec>,
}

fn rename_uses(g: &mut GraphProto, from: &str, to: &str) {
    for n in &mut g.node {
        for i in n.input.iter_mut().filter(|i| *i == from) {
            *i = to.to_string();
        }
    }
}

fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    output: &str,
    attrs: Vec<crate::onnx::proto::AttributeProto>,
) -> NodeProto {
    NodeProto {
        name: name.into(),
        op_type: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        attribute: attrs,
        ..Default::default()
    }
}

/// Reverses the channel order of NHWC value `cur` (a Gather on axis 3); returns the new value.
fn swap_channels_nhwc(g: &mut GraphProto, nodes: &mut Vec<NodeProto>, p: &str, cur: &str) -> String {
    g.initializer.push(Tensor::i64_vec(&[2, 1, 0]).to_proto(&format!("{p}_order")));
    let out = format!("{p}_sw");
    nodes.push(node(&format!("{p}_swap"), "Gather", &[cur, &format!("{p}_order")], &out, vec![attr::int("axis", 3)]));
    out
}

fn channel_const(g: &mut GraphProto, name: &str, v: [f32; 3], nhwc: bool) -> String {
    let dims: &[usize] = if nhwc { &[1, 1, 1, 3] } else { &[1, 3, 1, 1] };
    g.initializer.push(Tensor::f32(dims, v.to_vec()).to_proto(name));
    name.to_string()
}

/// Applies `spec` to `model`; returns the number of inputs and outputs converted.
pub fn fuse_io(model: &mut Model, spec: &FuseIoSpec) -> Result<usize> {
    let opset = model.opset("").unwrap_or(13);
    if opset < 11 {
        bail!("fuse-io needs opset 11 or newer (Round, Clip with inputs); the model has {opset}");
    }
    let g = model.graph_mut();
    let last_initializer = g.initializer.last().map(|t| t.name.clone());
    let mut prologue = Vec::new();
    for s in &spec.inputs {
        let pos =
            g.input.iter().position(|v| v.name == s.name).with_context(|| format!("no graph input '{}'", s.name))?;
        let (dtype, shape) = declared(&g.input[pos]);
        if dtype != DataType::Float as i32 {
            bail!("input '{}' is not float32", s.name);
        }
        let shape = shape
            .filter(|s| s.len() == 4 && s[1] == Some(3))
            .with_context(|| format!("input '{}' is not N×3×H×W", s.name))?;
        let p = format!("{}__fuse", s.name);
        let inner = format!("{p}_nchw");
        rename_uses(g, &s.name, &inner);
        let dims: Vec<Dim> = [shape[0], shape[2], shape[3]]
            .iter()
            .enumerate()
            .map(|(i, d)| d.map(Dim::Fixed).unwrap_or_else(|| Dim::Sym(["n", "h", "w"][i].into())))
            .collect();
        g.input[pos] = value_info(
            &s.name,
            DataType::Uint8,
            Some(&[dims[0].clone(), dims[1].clone(), dims[2].clone(), Dim::Fixed(3)]),
        );
        prologue.push(node(
            &format!("{p}_cast"),
            "Cast",
            &[&s.name],
            &format!("{p}_f"),
            vec![attr::int("to", DataType::Float as i64)],
        ));
        let mut cur = format!("{p}_f");
        if s.swap_channels {
            cur = swap_channels_nhwc(g, &mut prologue, &p, &cur);
        }
        let mean = channel_const(g, &format!("{p}_mean"), s.mean, true);
        let inv = channel_const(g, &format!("{p}_inv_std"), [1.0 / s.std[0], 1.0 / s.std[1], 1.0 / s.std[2]], true);
        prologue.push(node(&format!("{p}_sub"), "Sub", &[&cur, &mean], &format!("{p}_c"), vec![]));
        prologue.push(node(&format!("{p}_mul"), "Mul", &[&format!("{p}_c"), &inv], &format!("{p}_n"), vec![]));
        prologue.push(node(
            &format!("{p}_t"),
            "Transpose",
            &[&format!("{p}_n")],
            &inner,
            vec![attr::ints("perm", &[0, 3, 1, 2])],
        ));
    }
    let mut epilogue = Vec::new();
    for s in &spec.outputs {
        let pos =
            g.output.iter().position(|v| v.name == s.name).with_context(|| format!("no graph output '{}'", s.name))?;
        let p = format!("{}__fuse", s.name);
        let inner = format!("{p}_nchw");
        let producer = g
            .node
            .iter_mut()
            .find(|n| n.output.iter().any(|o| o == &s.name))
            .with_context(|| format!("output '{}' has no producer", s.name))?;
        for o in producer.output.iter_mut().filter(|o| **o == s.name) {
            *o = inner.clone();
        }
        rename_uses(g, &s.name, &inner);
        let (_, shape) = declared(&g.output[pos]);
        let nhwc: Option<Vec<Dim>> = shape.filter(|s| s.len() == 4).map(|s| {
            [s[0], s[2], s[3], s[1]].iter().map(|d| d.map(Dim::Fixed).unwrap_or(Dim::Sym("?".into()))).collect()
        });
        g.output[pos] = value_info(&s.name, DataType::Uint8, nhwc.as_deref());
        epilogue.push(node(
            &format!("{p}_t"),
            "Transpose",
            &[&inner],
            &format!("{p}_hwc"),
            vec![attr::ints("perm", &[0, 2, 3, 1])],
        ));
        g.initializer.push(Tensor::f32(&[], vec![s.scale]).to_proto(&format!("{p}_scale")));
        g.initializer.push(Tensor::f32(&[], vec![s.offset]).to_proto(&format!("{p}_offset")));
        g.initializer.push(Tensor::f32(&[], vec![0.0]).to_proto(&format!("{p}_lo")));
        g.initializer.push(Tensor::f32(&[], vec![255.0]).to_proto(&format!("{p}_hi")));
        epilogue.push(node(
            &format!("{p}_mul"),
            "Mul",
            &[&format!("{p}_hwc"), &format!("{p}_scale")],
            &format!("{p}_m"),
            vec![],
        ));
        epilogue.push(node(
            &format!("{p}_add"),
            "Add",
            &[&format!("{p}_m"), &format!("{p}_offset")],
            &format!("{p}_a"),
            vec![],
        ));
        let mut cur = format!("{p}_a");
        if s.swap_channels {
            cur = swap_channels_nhwc(g, &mut epilogue, &p, &cur);
        }
        epilogue.push(node(&format!("{p}_round"), "Round", &[&cur], &format!("{p}_r"), vec![]));
        epilogue.push(node(
            &format!("{p}_clip"),
            "Clip",
            &[&format!("{p}_r"), &format!("{p}_lo"), &format!("{p}_hi")],
            &format!("{p}_c"),
            vec![],
        ));
        epilogue.push(node(
            &format!("{p}_cast"),
            "Cast",
            &[&format!("{p}_c")],
            &s.name,
            vec![attr::int("to", DataType::Uint8 as i64)],
        ));
    }
    let n = spec.inputs.len() + spec.outputs.len();
    record(model, spec)?;
    let g = model.graph_mut();
    let body = std::mem::take(&mut g.node);
    g.node = prologue.into_iter().chain(body).chain(epilogue).collect();
    // The swapper's emap must stay the last initializer: move it behind the constants added here.
    if let Some(last) = last_initializer {
        if let Some(pos) = g.initializer.iter().position(|t| t.name == last) {
            let t = g.initializer.remove(pos);
            g.initializer.push(t);
        }
    }
    Ok(n)
}

/// Adds `spec` to the model's [`METADATA_KEY`] entry (merging with an earlier fusion's).
fn record(model: &mut Model, spec: &FuseIoSpec) -> Result<()> {
    let props = &mut model.proto.metadata_props;
    let mut all = match props.iter().find(|p| p.key == METADATA_KEY) {
        Some(p) => serde_json::from_str::<FuseIoSpec>(&p.value)
            .with_context(|| format!("the model's '{METADATA_KEY}' metadata is not a fuse-io record"))?,
        None => FuseIoSpec::default(),
    };
    all.inputs.extend(spec.inputs.iter().cloned());
    all.outputs.extend(spec.outputs.iter().cloned());
    let value = serde_json::to_string(&all)?;
    props.retain(|p| p.key != METADATA_KEY);
    props.push(StringStringEntryProto { key: METADATA_KEY.into(), value });
    Ok(())
}

/// `fuse-io` as a [`Pass`](super::Pass): the [`FuseIoSpec`] comes from the recipe's options
/// (`[[passes.options.inputs]]` / `[[passes.options.outputs]]`, the fields of [`InputSpec`] and
/// [`OutputSpec`]). Inputs and outputs that are already uint8 are skipped, so a second run
/// changes nothing.
#[derive(Debug, Clone, Default)]
pub struct FuseIo;

impl super::Pass for FuseIo {
    fn name(&self) -> &'static str {
        "fuse-io"
    }
    fn exact(&self) -> bool {
        // Exact with respect to the CPU reference pre/post-processing, not to the bare model: the
        // signature changes, so `verify` compares it through `preprocess_reference` and
        // `postprocess_reference`.
        true
    }
    fn run(&self, model: &mut Model, ctx: &super::PassContext) -> Result<super::PassReport> {
        let mut report = super::edit::report(self.name(), model);
        let mut spec: FuseIoSpec = toml::Value::Table(ctx.options.clone())
            .try_into()
            .context("fuse-io options: expected `inputs` and/or `outputs` lists (name, mean, std / scale, offset)")?;
        let g = model.graph();
        let is_u8 = |v: Option<&crate::onnx::proto::ValueInfoProto>| {
            v.map(|v| declared(v).0 == DataType::Uint8 as i32).unwrap_or(false)
        };
        spec.inputs.retain(|s| {
            let done = is_u8(g.input.iter().find(|v| v.name == s.name));
            if done {
                report.details.push(format!("input '{}': already uint8, skipped", s.name));
            }
            !done
        });
        spec.outputs.retain(|s| {
            let done = is_u8(g.output.iter().find(|v| v.name == s.name));
            if done {
                report.details.push(format!("output '{}': already uint8, skipped", s.name));
            }
            !done
        });
        for s in &spec.inputs {
            report.details.push(format!("input '{}' → uint8 NHWC (mean {:?}, std {:?})", s.name, s.mean, s.std));
        }
        for s in &spec.outputs {
            report.details.push(format!("output '{}' → uint8 NHWC (·{} + {})", s.name, s.scale, s.offset));
        }
        if !spec.inputs.is_empty() || !spec.outputs.is_empty() {
            report.rewritten = fuse_io(model, &spec)?;
        }
        super::edit::finish(report, model)
    }
}

/// CPU reference of an input fusion: NHWC u8 pixels → normalised NCHW float, with exactly the float
/// operations of the fused prologue.
pub fn preprocess_reference(pixels: &[u8], n: usize, h: usize, w: usize, s: &InputSpec) -> Tensor {
    let mut out = vec![0f32; n * 3 * h * w];
    let inv = [1.0 / s.std[0], 1.0 / s.std[1], 1.0 / s.std[2]];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let src_c = if s.swap_channels { 2 - c } else { c };
                    let v = pixels[((b * h + y) * w + x) * 3 + src_c] as f32;
                    out[((b * 3 + c) * h + y) * w + x] = (v - s.mean[c]) * inv[c];
                }
            }
        }
    }
    Tensor::f32(&[n, 3, h, w], out)
}

/// CPU reference of an output fusion: NCHW float → NHWC u8 pixels.
pub fn postprocess_reference(t: &Tensor, s: &OutputSpec) -> Result<Tensor> {
    let TensorData::F32(v) = &t.data else { bail!("output is not float32") };
    let [n, c, h, w] = <[usize; 4]>::try_from(t.dims.as_slice()).map_err(|_| anyhow::anyhow!("output is not 4-D"))?;
    let mut out = vec![0u8; n * h * w * c];
    for b in 0..n {
        for y in 0..h {
            for x in 0..w {
                for k in 0..c {
                    let src_c = if s.swap_channels { c - 1 - k } else { k };
                    let f = v[((b * c + src_c) * h + y) * w + x] * s.scale + s.offset;
                    out[((b * h + y) * w + x) * c + k] = f.round_ties_even().clamp(0.0, 255.0) as u8;
                }
            }
        }
    }
    Ok(Tensor { dims: vec![n, h, w, c], data: TensorData::U8(out) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::GraphBuilder;
    use crate::runtime::{self, session::ModelSource, SessionConfig, SessionRunner};
    use crate::util::rng::Rng;

    fn image_model() -> Model {
        let mut rng = Rng::new(4);
        let mut b = GraphBuilder::new("img");
        let x = b.input_f32("x", &[1, 3, 16, 16]);
        let w = b.init("w", &Tensor::f32(&[3, 3, 3, 3], rng.vec(81, -0.4, 0.4)));
        let c = b.op("Conv", &[&x, &w], &[attr::ints("pads", &[1, 1, 1, 1])]);
        b.node("Tanh", &[&c], &["y"], &[]);
        b.output_f32("y", &[1, 3, 16, 16]);
        b.init_named("emap", &Tensor::f32(&[2, 2], vec![1.0, 0.0, 0.0, 1.0]));
        b.build(13)
    }

    fn specs(swap: bool) -> FuseIoSpec {
        FuseIoSpec {
            inputs: vec![InputSpec { name: "x".into(), mean: [127.5; 3], std: [128.0; 3], swap_channels: swap }],
            outputs: vec![OutputSpec { name: "y".into(), scale: 127.5, offset: 127.5, swap_channels: swap }],
        }
    }

    #[test]
    fn fused_model_is_bit_identical_to_cpu_pre_and_post_processing() {
        let rt = runtime::init(None).unwrap();
        for swap in [false, true] {
            let original = image_model();
            let mut fused = original.clone();
            assert_eq!(fuse_io(&mut fused, &specs(swap)).unwrap(), 2);
            assert_eq!(fused.graph().initializer.last().unwrap().name, "emap");
            let mut a =
                SessionRunner::new(rt, ModelSource::Bytes(&original.to_bytes()), &SessionConfig::cpu(1)).unwrap();
            let mut b = SessionRunner::new(rt, ModelSource::Bytes(&fused.to_bytes()), &SessionConfig::cpu(1)).unwrap();
            for seed in 0..4 {
                let mut r = Rng::new(seed);
                let pixels: Vec<u8> = (0..16 * 16 * 3).map(|_| (r.next_u64() & 0xff) as u8).collect();
                let s = specs(swap);
                let pre = preprocess_reference(&pixels, 1, 16, 16, &s.inputs[0]);
                let reference =
                    postprocess_reference(&a.run(&[("x".into(), pre)]).unwrap()[0].1, &s.outputs[0]).unwrap();
                let input = Tensor { dims: vec![1, 16, 16, 3], data: TensorData::U8(pixels) };
                let got = b.run(&[("x".into(), input)]).unwrap();
                assert_eq!(got[0].1, reference, "swap={swap} seed={seed}");
            }
        }
    }

    #[test]
    fn unknown_names_and_non_image_inputs_are_errors() {
        let mut m = image_model();
        let mut s = specs(false);
        s.inputs[0].name = "nope".into();
        assert!(fuse_io(&mut m, &s).unwrap_err().to_string().contains("no graph input 'nope'"));
    }
}
