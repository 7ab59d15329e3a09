//! Input/output signatures per role, so a model given for the wrong role (a detector passed as the
//! swapper, say) is refused up front with a clear message instead of failing deep inside a run.

use anyhow::{bail, Result};

use super::Role;
use crate::onnx::shape::{declared, DimSize};
use crate::onnx::Model;

/// One declared graph input or output: name and dims (`None` = symbolic or unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    pub name: String,
    pub dims: Option<Vec<DimSize>>,
}

fn ports(values: &[crate::onnx::proto::ValueInfoProto], model: &Model) -> Vec<Port> {
    let inits: std::collections::HashSet<&str> = model.graph().initializer.iter().map(|t| t.name.as_str()).collect();
    values
        .iter()
        .filter(|v| !inits.contains(v.name.as_str()))
        .map(|v| Port { name: v.name.clone(), dims: declared(v).1 })
        .collect()
}

/// Does `dims` fit `want` (None in `want` = any size; unknown dims in the model fit anything)?
fn fits(dims: &Option<Vec<DimSize>>, want: &[Option<i64>]) -> bool {
    match dims {
        None => true,
        Some(d) => {
            d.len() == want.len()
                && d.iter().zip(want).all(|(have, w)| !matches!((have, w), (Some(h), Some(w)) if h != w))
        }
    }
}

/// The expected signature of a role, in words and as a check.
struct Expect {
    words: &'static str,
    check: fn(&[Port], &[Port]) -> bool,
}

fn expect(role: Role) -> Expect {
    const IMG: fn(i64) -> [Option<i64>; 4] = |s| [None, Some(3), Some(s), Some(s)];
    match role {
        Role::Swapper => Expect {
            words: "inputs [1,3,128,128] (target) and [1,512] (source) -> output [1,3,128,128]",
            check: |i, o| {
                i.len() == 2
                    && i.iter().any(|p| fits(&p.dims, &IMG(128)))
                    && i.iter().any(|p| fits(&p.dims, &[None, Some(512)]))
                    && o.len() == 1
                    && fits(&o[0].dims, &IMG(128))
            },
        },
        Role::Detector => Expect {
            words: "input [1,3,H,W] -> 6 or 9 outputs (scores, boxes[, keypoints] for strides 8/16/32)",
            check: |i, o| {
                i.len() == 1
                    && fits(&i[0].dims, &[None, Some(3), None, None])
                    && (o.len() == 6 || o.len() == 9)
                    && o.iter().all(|p| p.dims.as_ref().is_none_or(|d| d.len() == 2 || d.len() == 3))
            },
        },
        Role::Recognizer => Expect {
            words: "input [1,3,112,112] -> embedding [1,512]",
            check: |i, o| {
                i.len() == 1 && fits(&i[0].dims, &IMG(112)) && o.len() == 1 && fits(&o[0].dims, &[None, Some(512)])
            },
        },
        Role::Landmarks => Expect {
            words: "input [1,3,192,192] -> [1,212] (106 points)",
            check: |i, o| {
                i.len() == 1 && fits(&i[0].dims, &IMG(192)) && o.len() == 1 && fits(&o[0].dims, &[None, Some(212)])
            },
        },
        Role::Enhancer => Expect {
            words: "input [1,3,512,512] -> image [1,3,512,512]",
            check: |i, o| i.len() == 1 && fits(&i[0].dims, &IMG(512)) && o.len() == 1 && fits(&o[0].dims, &IMG(512)),
        },
    }
}

fn render(ports: &[Port]) -> String {
    ports
        .iter()
        .map(|p| {
            let dims = match &p.dims {
                None => "?".to_string(),
                Some(d) => d.iter().map(|x| x.map_or("?".into(), |v| v.to_string())).collect::<Vec<_>>().join(","),
            };
            format!("{} [{dims}]", p.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The roles whose signature `model` fits.
pub fn matching_roles(model: &Model) -> Vec<Role> {
    let (i, o) = (ports(&model.graph().input, model), ports(&model.graph().output, model));
    Role::ALL.into_iter().filter(|&r| (expect(r).check)(&i, &o)).collect()
}

/// Refuses a model whose declared inputs/outputs do not fit `role`; `label` names it in the error
/// (usually the file). Symbolic dims fit any size.
pub fn check(model: &Model, role: Role, label: &str) -> Result<()> {
    let (i, o) = (ports(&model.graph().input, model), ports(&model.graph().output, model));
    let e = expect(role);
    if (e.check)(&i, &o) {
        return Ok(());
    }
    let looks = matching_roles(model);
    let hint = match looks.first() {
        Some(r) => format!("; it looks like a {} model", r.name()),
        None => String::new(),
    };
    bail!(
        "{label} is not a {} model: expected {}, found inputs {} -> outputs {}{hint}",
        role.name(),
        e.words,
        render(&i),
        render(&o)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::synth;
    use crate::models::Scale;

    #[test]
    fn every_tiny_replica_fits_its_own_role_only() {
        for role in Role::ALL {
            let m = synth::synth_model(role, Scale::Tiny, 1).unwrap();
            check(&m, role, role.default_file()).unwrap();
            assert_eq!(matching_roles(&m), vec![role], "{}", role.name());
        }
    }

    #[test]
    fn a_detector_given_as_swapper_is_named() {
        let m = synth::synth_model(Role::Detector, Scale::Tiny, 1).unwrap();
        let e = check(&m, Role::Swapper, "det_10g.onnx").unwrap_err().to_string();
        assert!(e.starts_with("det_10g.onnx is not a swapper model: expected inputs [1,3,128,128]"), "{e}");
        assert!(e.contains("found inputs input.1 [1,3,?,?]"), "{e}");
        assert!(e.ends_with("it looks like a detector model"), "{e}");
    }
}
