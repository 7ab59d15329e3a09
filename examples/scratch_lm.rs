use faceperf::bench::inputs::Photo;
use faceperf::models::Role;
use faceperf::onnx::Model;
use faceperf::rewrite::{pass_by_name, PassContext};
use faceperf::verify::inputs::*;
use faceperf::verify::metrics::diff;
fn main() {
    let rt = faceperf::runtime::init(None).unwrap();
    let m = Model::load("models/replica-tiny/2d106det.onnx").unwrap();
    let mut r = m.clone();
    r.path = None;
    pass_by_name("fp16").unwrap().run(&mut r, &PassContext::default()).unwrap();
    let d = describe_inputs(&m, Some(Role::Landmarks), &Default::default()).unwrap();
    let photo = Photo::astronaut().unwrap();
    for c in make_cases(Some(Role::Landmarks), &d, 16, 5, Some(&photo)) {
        let f = vec![(d[0].name.clone(), feed_tensor(&d[0], &c.feeds[0].1, Some(Role::Landmarks), None).unwrap())];
        let a = faceperf::verify::run_once(rt, &m, &f, 1).unwrap();
        let b = faceperf::verify::run_once(rt, &r, &f, 1).unwrap();
        let dd = diff(&a[0].1, &b[0].1).unwrap();
        let v = a[0].1.to_f32s();
        let sat = v.iter().filter(|x| x.abs() > 0.99).count();
        println!("{:28} max_abs {:.4} range {:.3} saturated {}/212", c.label, dd.max_abs, dd.ref_range, sat);
    }
}
