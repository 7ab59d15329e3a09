//! Layer helpers shared by the replica generators: a [`GraphBuilder`] plus a seeded [`Rng`] that
//! draws every weight in construction order, so a seed fixes every byte of the model.

use crate::onnx::graph::attr;
use crate::onnx::proto::AttributeProto;
use crate::onnx::{GraphBuilder, Model, Tensor};
use crate::util::rng::Rng;

/// A graph under construction with its weight generator.
pub(crate) struct Net {
    pub b: GraphBuilder,
    rng: Rng,
    /// Skeleton mode: random initializers get their shape but no payload (see `synth_skeleton`).
    skeleton: bool,
    /// Skeleton initializers and the dims they stand for, patched in by `build`.
    deferred: Vec<(String, Vec<i64>)>,
}

impl Net {
    /// An empty graph named `name` whose weights come from `seed`.
    pub fn new(name: &str, seed: u64) -> Net {
        Net { b: GraphBuilder::new(name), rng: Rng::new(seed), skeleton: false, deferred: vec![] }
    }

    /// Switches to skeleton mode (before any weight is drawn).
    pub fn skeleton(mut self, on: bool) -> Net {
        self.skeleton = on;
        self
    }

    /// Finishes the model.
    pub fn build(self, opset: i64) -> Model {
        let mut m = self.b.build(opset);
        if !self.deferred.is_empty() {
            let dims: std::collections::HashMap<&str, &Vec<i64>> =
                self.deferred.iter().map(|(n, d)| (n.as_str(), d)).collect();
            for t in &mut m.graph_mut().initializer {
                if let Some(d) = dims.get(t.name.as_str()) {
                    t.dims = d.to_vec();
                }
            }
        }
        m
    }

    /// A random float initializer named `name` (exactly), or a payload-less one in skeleton mode.
    fn random(&mut self, name: Option<&str>, hint: &str, dims: &[usize], lo: f32, hi: f32) -> String {
        if self.skeleton {
            let t = Tensor::f32(&[0], vec![]);
            let name = match name {
                Some(n) => self.b.init_named(n, &t),
                None => self.b.init(hint, &t),
            };
            self.deferred.push((name.clone(), dims.iter().map(|&d| d as i64).collect()));
            return name;
        }
        let v = self.rng.vec(dims.iter().product(), lo, hi);
        match name {
            Some(n) => self.b.init_named(n, &Tensor::f32(dims, v)),
            None => self.b.init(hint, &Tensor::f32(dims, v)),
        }
    }

    /// A float initializer of random values in ±`bound`.
    pub fn rand_init(&mut self, hint: &str, dims: &[usize], bound: f32) -> String {
        self.random(None, hint, dims, -bound, bound)
    }

    /// A float initializer named exactly `name` of random values in ±`bound`.
    pub fn rand_named(&mut self, name: &str, dims: &[usize], bound: f32) -> String {
        self.random(Some(name), name, dims, -bound, bound)
    }

    /// A float initializer of random values in [lo, hi).
    pub fn range_init(&mut self, hint: &str, dims: &[usize], lo: f32, hi: f32) -> String {
        self.random(None, hint, dims, lo, hi)
    }

    /// A float initializer of fixed values.
    pub fn f32s(&mut self, hint: &str, dims: &[usize], v: Vec<f32>) -> String {
        self.b.init(hint, &Tensor::f32(dims, v))
    }

    /// An int64 rank-1 initializer (shapes, pads, axes, split sizes).
    pub fn i64s(&mut self, hint: &str, v: &[i64]) -> String {
        self.b.init(hint, &Tensor::i64_vec(v))
    }

    /// Weights scaled so activations keep roughly unit variance (He-uniform with `gain`).
    pub fn weight(&mut self, dims: &[usize], fan_in: usize, gain: f32) -> String {
        let bound = gain * (3.0 / fan_in.max(1) as f32).sqrt();
        self.rand_init("weight", dims, bound)
    }

    /// `Conv` with a `k`×`k` kernel, optional zero padding through the `pads` attribute, and a bias.
    #[allow(clippy::too_many_arguments)]
    pub fn conv(
        &mut self,
        x: &str,
        cin: usize,
        cout: usize,
        k: usize,
        stride: usize,
        pad: usize,
        groups: usize,
        gain: f32,
    ) -> String {
        let w = self.weight(&[cout, cin / groups, k, k], cin / groups * k * k, gain);
        let bias = self.rand_init("bias", &[cout], 0.05);
        let (k, s, p) = (k as i64, stride as i64, pad as i64);
        let mut attrs: Vec<AttributeProto> = vec![
            attr::ints("kernel_shape", &[k, k]),
            attr::ints("strides", &[s, s]),
            attr::ints("pads", &[p, p, p, p]),
            attr::ints("dilations", &[1, 1]),
        ];
        if groups > 1 {
            attrs.push(attr::int("group", groups as i64));
        }
        self.b.op("Conv", &[x, &w, &bias], &attrs)
    }

    /// A plain convolution (stride 1 or 2, "same" zero padding, gain for ReLU nets).
    pub fn conv_same(&mut self, x: &str, cin: usize, cout: usize, k: usize, stride: usize) -> String {
        self.conv(x, cin, cout, k, stride, k / 2, 1, 1.4)
    }

    /// `Pad(mode=reflect)` by `p` on both spatial sides, pads as an int64 initializer input (opset ≥ 11).
    pub fn reflect_pad(&mut self, x: &str, p: i64) -> String {
        let pads = self.i64s("pads", &[0, 0, p, p, 0, 0, p, p]);
        self.b.op("Pad", &[x, &pads], &[attr::string("mode", "reflect")])
    }

    /// `Relu`.
    pub fn relu(&mut self, x: &str) -> String {
        self.b.op("Relu", &[x], &[])
    }

    /// `LeakyRelu` with slope `alpha`.
    pub fn leaky(&mut self, x: &str, alpha: f32) -> String {
        self.b.op("LeakyRelu", &[x], &[attr::float("alpha", alpha)])
    }

    /// `PRelu` with one learned slope per channel.
    pub fn prelu(&mut self, x: &str, c: usize) -> String {
        let slope = self.range_init("prelu", &[c, 1, 1], 0.1, 0.3);
        self.b.op("PRelu", &[x, &slope], &[])
    }

    /// Inference-mode `BatchNormalization` with random affine and statistics near identity.
    pub fn batchnorm(&mut self, x: &str, c: usize) -> String {
        let scale = self.range_init("bn_scale", &[c], 0.8, 1.2);
        let bias = self.rand_init("bn_bias", &[c], 0.05);
        let mean = self.rand_init("bn_mean", &[c], 0.05);
        let var = self.range_init("bn_var", &[c], 0.9, 1.1);
        self.b.op("BatchNormalization", &[x, &scale, &bias, &mean, &var], &[attr::float("epsilon", 1e-5)])
    }

    /// `Gemm` `x (1×k) · Wᵀ + b` with `W` stored `n×k` (PyTorch Linear layout, `transB=1`).
    pub fn linear(&mut self, x: &str, k: usize, n: usize, gain: f32) -> String {
        let w = self.weight(&[n, k], k, gain);
        let bias = self.rand_init("bias", &[n], 0.05);
        self.b.op("Gemm", &[x, &w, &bias], &[attr::int("transB", 1)])
    }

    /// `Gemm` like [`Net::linear`] with the bias drawn from [lo, hi) (style scales centred on 1).
    pub fn linear_bias_range(&mut self, x: &str, k: usize, n: usize, gain: f32, lo: f32, hi: f32) -> String {
        let w = self.weight(&[n, k], k, gain);
        let bias = self.range_init("bias", &[n], lo, hi);
        self.b.op("Gemm", &[x, &w, &bias], &[attr::int("transB", 1)])
    }

    /// `Resize` by an integer spatial factor (opset 11+ form: X, roi, scales).
    pub fn upsample(&mut self, x: &str, factor: f32, mode: &str) -> String {
        let roi = self.f32s("roi", &[0], vec![]);
        let scales = self.f32s("scales", &[4], vec![1.0, 1.0, factor, factor]);
        let mut attrs = vec![attr::string("mode", mode)];
        if mode == "nearest" {
            attrs.push(attr::string("nearest_mode", "floor"));
            attrs.push(attr::string("coordinate_transformation_mode", "asymmetric"));
        }
        self.b.op("Resize", &[x, &roi, &scales], &attrs)
    }

    /// Elementwise binary op.
    pub fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        self.b.op(op, &[a, b], &[])
    }

    /// `Reshape` to a constant target.
    pub fn reshape(&mut self, x: &str, shape: &[i64]) -> String {
        let s = self.i64s("shape", shape);
        self.b.op("Reshape", &[x, &s], &[])
    }
}
