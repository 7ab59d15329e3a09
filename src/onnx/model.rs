//! Loading and saving ONNX models, including tensors stored in external data files.
//!
//! On load, external tensors are read into memory (`raw_data`) so every later stage sees one uniform
//! model. On save, initializers go to a `<file>.data` side file when the caller asks for it or when
//! the inline model would exceed protobuf's 2 GiB message limit, which ORT enforces.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use prost::Message;

use super::proto::{GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto};
use super::tensor::proto_bytes;

/// Protobuf refuses messages of 2 GiB or more; stay well below with inline data.
pub const INLINE_LIMIT_BYTES: u64 = 1 << 31;
/// Tensors smaller than this stay inline even when external data is used (as onnx's own saver does).
pub const EXTERNAL_MIN_TENSOR_BYTES: u64 = 1024;

/// The oldest default-domain (`ai.onnx`) opset faceperf accepts: ONNX Runtime only guarantees
/// models of opset 7 or newer.
pub const OPSET_MIN: i64 = 7;
/// The newest default-domain opset faceperf accepts: the newest that ONNX Runtime officially
/// supports (1.32 says "till opset 28"; it refuses newer ones as "under development").
pub const OPSET_MAX: i64 = 28;

/// Where a save puts initializer payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DataLayout {
    /// Inline unless the model would exceed the protobuf limit, then external.
    #[default]
    Auto,
    /// Everything in the `.onnx` file.
    Inline,
    /// Large tensors in `<file>.data`.
    External,
}

/// An ONNX model in memory, with the path it was read from (if any).
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub proto: ModelProto,
    pub path: Option<PathBuf>,
}

impl Model {
    /// Wraps a `ModelProto`.
    pub fn new(proto: ModelProto) -> Model {
        Model { proto, path: None }
    }

    /// Reads a model from `path`, resolving external data relative to the model's folder.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let path = path.as_ref();
        let file = fs::File::open(path).with_context(|| format!("{}: cannot open model", path.display()))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            bail!("{}: file is empty (0 bytes), not an ONNX model", path.display());
        }
        // SAFETY: the map is read-only and dropped before we return; a concurrent writer could only
        // make decoding fail, which is reported as an error.
        let map = unsafe { memmap2::Mmap::map(&file) }.with_context(|| format!("{}: cannot read", path.display()))?;
        let mut model =
            Model::from_bytes(&map).with_context(|| format!("{}: not a valid ONNX model", path.display()))?;
        model.path = Some(path.to_path_buf());
        let base = path.parent().unwrap_or(Path::new("."));
        model.resolve_external_data(base).with_context(|| format!("{}: external data", path.display()))?;
        model.check_opset().with_context(|| format!("{}: unsupported opset", path.display()))?;
        model.check_graph().with_context(|| format!("{}: invalid graph", path.display()))?;
        Ok(model)
    }

    /// Refuses a default-domain opset outside [`OPSET_MIN`]..=[`OPSET_MAX`] (a model that imports
    /// no default-domain opset uses none of its ops and passes).
    pub fn check_opset(&self) -> Result<()> {
        match self.opset("") {
            Some(v) if v < OPSET_MIN => bail!(
                "the model imports ai.onnx opset {v}; faceperf supports opsets {OPSET_MIN} to {OPSET_MAX} \
                 (ONNX Runtime runs none older; convert it with onnx.version_converter)"
            ),
            Some(v) if v > OPSET_MAX => bail!(
                "the model imports ai.onnx opset {v}; faceperf supports opsets {OPSET_MIN} to {OPSET_MAX} \
                 (ONNX Runtime officially supports none newer; export it with opset {OPSET_MAX} or older)"
            ),
            _ => Ok(()),
        }
    }

    /// Refuses a main graph that no runtime could execute: a node without outputs, a value produced
    /// twice, a node input or graph output nothing provides, or a cycle.
    pub fn check_graph(&self) -> Result<()> {
        let g = self.graph();
        if let Some(n) = g.node.iter().find(|n| n.output.iter().all(|o| o.is_empty())) {
            bail!("node {} has no outputs", super::graph::node_label(n));
        }
        let idx = super::graph::GraphIndex::new(g)?;
        idx.check_dangling(g)?;
        idx.topological_order(g)?;
        Ok(())
    }

    /// Decodes a serialized `ModelProto` and checks the minimum structure every tool relies on.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        let proto = ModelProto::decode(bytes)
            .map_err(|e| anyhow!("protobuf decoding failed ({e}); the file is truncated or not ONNX"))?;
        let model = Model::new(proto);
        model.check_structure()?;
        Ok(model)
    }

    fn check_structure(&self) -> Result<()> {
        if self.proto.graph.is_none() {
            bail!("the model has no graph (is this an ONNX file?)");
        }
        if self.proto.ir_version <= 0 {
            bail!("the model declares no IR version (is this an ONNX file?)");
        }
        if self.proto.opset_import.is_empty() {
            bail!("the model imports no opset");
        }
        Ok(())
    }

    /// The main graph.
    pub fn graph(&self) -> &GraphProto {
        self.proto.graph.as_ref().expect("checked on load")
    }

    /// The main graph, mutable.
    pub fn graph_mut(&mut self) -> &mut GraphProto {
        self.proto.graph.get_or_insert_with(Default::default)
    }

    /// The opset version imported for `domain` ("" or "ai.onnx" for the default domain).
    pub fn opset(&self, domain: &str) -> Option<i64> {
        let norm = |d: &str| if d == "ai.onnx" { String::new() } else { d.to_string() };
        let want = norm(domain);
        self.proto.opset_import.iter().find(|o| norm(&o.domain) == want).map(|o| o.version)
    }

    /// Sets (or adds) the opset version for `domain`.
    pub fn set_opset(&mut self, domain: &str, version: i64) {
        match self.proto.opset_import.iter_mut().find(|o| o.domain == domain) {
            Some(o) => o.version = version,
            None => self.proto.opset_import.push(OperatorSetIdProto { domain: domain.into(), version }),
        }
    }

    /// Total bytes of initializer payloads.
    pub fn initializer_bytes(&self) -> u64 {
        self.graph().initializer.iter().map(proto_bytes).sum()
    }

    fn resolve_external_data(&mut self, base: &Path) -> Result<()> {
        let mut files: std::collections::HashMap<PathBuf, memmap2::Mmap> = Default::default();
        for t in self.graph_mut().initializer.iter_mut() {
            if t.data_location != 1 {
                continue;
            }
            let mut location = None;
            let mut offset = 0u64;
            let mut length = None;
            for kv in &t.external_data {
                match kv.key.as_str() {
                    "location" => location = Some(kv.value.clone()),
                    "offset" => {
                        offset = kv.value.parse().with_context(|| format!("tensor '{}': bad offset", t.name))?
                    }
                    "length" => {
                        length =
                            Some(kv.value.parse::<u64>().with_context(|| format!("tensor '{}': bad length", t.name))?)
                    }
                    _ => {}
                }
            }
            let location = location.ok_or_else(|| anyhow!("tensor '{}' is external but names no location", t.name))?;
            if Path::new(&location).is_absolute() || location.contains("..") {
                bail!("tensor '{}': external location '{location}' must be relative to the model folder", t.name);
            }
            let file_path = base.join(&location);
            if !files.contains_key(&file_path) {
                let f = fs::File::open(&file_path).with_context(|| {
                    format!("tensor '{}': external data file {} is missing", t.name, file_path.display())
                })?;
                // SAFETY: read-only map, copied out before the map is dropped.
                let map = unsafe { memmap2::Mmap::map(&f) }?;
                files.insert(file_path.clone(), map);
            }
            let data = &files[&file_path];
            let length = length.unwrap_or_else(|| proto_bytes(t));
            let end = offset.checked_add(length).filter(|&e| e <= data.len() as u64).ok_or_else(|| {
                anyhow!(
                    "tensor '{}': external data {}..{} lies beyond the end of {} ({} bytes)",
                    t.name,
                    offset,
                    offset + length,
                    file_path.display(),
                    data.len()
                )
            })?;
            t.raw_data = bytes::Bytes::copy_from_slice(&data[offset as usize..end as usize]);
            t.data_location = 0;
            t.external_data.clear();
        }
        Ok(())
    }

    /// Serializes the model with all data inline.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.proto.encode_to_vec()
    }

    /// Writes the model to `path` atomically (temporary file, then rename). With external data the
    /// side file is `<file name>.data` beside it.
    pub fn save(&self, path: impl AsRef<Path>, layout: DataLayout) -> Result<()> {
        let path = path.as_ref();
        let external = match layout {
            DataLayout::Inline => false,
            DataLayout::External => true,
            DataLayout::Auto => self.initializer_bytes() + 64 * 1024 * 1024 >= INLINE_LIMIT_BYTES,
        };
        if !external {
            let bytes = self.to_bytes();
            if bytes.len() as u64 >= INLINE_LIMIT_BYTES {
                bail!(
                    "{}: model is {} bytes, over protobuf's 2 GiB limit; save with external data",
                    path.display(),
                    bytes.len()
                );
            }
            return write_atomic(path, &bytes);
        }
        let file_name =
            path.file_name().ok_or_else(|| anyhow!("{}: not a file path", path.display()))?.to_string_lossy();
        let data_name = format!("{file_name}.data");
        let data_path = path.with_file_name(&data_name);
        let mut proto = self.proto.clone();
        let mut payload: Vec<u8> = Vec::new();
        for t in proto.graph.get_or_insert_with(Default::default).initializer.iter_mut() {
            if (t.raw_data.len() as u64) < EXTERNAL_MIN_TENSOR_BYTES {
                continue;
            }
            // 4 KiB alignment lets ORT map tensors directly.
            while !payload.len().is_multiple_of(4096) {
                payload.push(0);
            }
            let offset = payload.len();
            payload.extend_from_slice(&t.raw_data);
            let kv = |k: &str, v: String| StringStringEntryProto { key: k.into(), value: v };
            t.external_data = vec![
                kv("location", data_name.clone()),
                kv("offset", offset.to_string()),
                kv("length", t.raw_data.len().to_string()),
            ];
            t.data_location = 1;
            t.raw_data = Default::default();
        }
        write_atomic(&data_path, &payload)?;
        write_atomic(path, &proto.encode_to_vec())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so readers
/// never see a partial file and a crash leaves the old file (or none).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_staged(path, bytes)?.commit()
}

/// A file written and synced under a temporary name beside its destination (`.<name>.tmp-<pid>`),
/// not yet visible under its own name. [`Staged::commit`] renames it into place; dropped
/// uncommitted, the temporary file is removed. A process killed in between leaves the temporary
/// file, which [`remove_stale_temps`] deletes.
#[derive(Debug)]
pub struct Staged {
    tmp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

fn temp_prefix(path: &Path) -> (PathBuf, String) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    (dir, format!(".{name}.tmp-"))
}

/// Writes `bytes` to a temporary file beside `path`; see [`Staged`].
pub fn write_staged(path: &Path, bytes: &[u8]) -> Result<Staged> {
    let (dir, prefix) = temp_prefix(path);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let staged = Staged { tmp, dest: path.to_path_buf(), committed: false };
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::create(&staged.tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    // On error `staged` is dropped here, which removes the partial temporary file.
    result.map_err(|e| anyhow::Error::new(e).context(format!("{}: cannot write", path.display())))?;
    Ok(staged)
}

impl Staged {
    /// Renames the file into place and syncs the folder so the rename survives a crash.
    pub fn commit(mut self) -> Result<()> {
        fs::rename(&self.tmp, &self.dest)
            .map_err(|e| anyhow::Error::new(e).context(format!("{}: cannot write", self.dest.display())))?;
        self.committed = true;
        if let Ok(d) = fs::File::open(temp_prefix(&self.dest).0) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Deletes temporary files a killed writer of `path` left behind (`.<name>.tmp-<pid>`). Call it
/// only while holding the lock that serialises writers of `path`, so no live writer owns one.
/// Returns how many were removed.
pub fn remove_stale_temps(path: &Path) -> usize {
    let (dir, prefix) = temp_prefix(path);
    let Ok(entries) = fs::read_dir(&dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| fs::remove_file(e.path()).is_ok())
        .count()
}
