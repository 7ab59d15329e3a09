//! The live face-swap pipeline: sources, stages, scheduler, sinks, and measurement.
//!
//! [`run`] loads the models a [`Config`] names, computes the source identity's latent once, opens
//! the source and sink, and runs the [`scheduler`] until the source ends or the frame/second limit
//! is reached; it returns a [`MeasureReport`] with per-frame records and per-stage statistics (what
//! `faceperf live --measure` prints and `faceperf bench` records).

pub mod adaptive;
pub mod align;
pub mod bottleneck;
#[cfg(feature = "camera")]
pub mod camera;
pub mod detect;
pub mod frame;
pub mod measure;
pub mod net;
pub mod paste;
pub mod preview;
pub mod queue;
pub mod scheduler;
pub mod sink;
pub mod source;
pub mod stages;
pub mod track;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use std::time::Duration;

use crate::runtime::gpu_monitor::{self, Monitor};

pub use measure::{FacesFrom, MeasureReport, Stage, StageSummary};
pub use sink::SinkSpec;
pub use source::{SourceSpec, SyntheticConfig};

use crate::models::Role;
use crate::profile::Profile;
use crate::runtime::Runtime;
use frame::Frame;

/// The model files of the five roles: the originals; each role's variant (the profile's `variant`)
/// is found or made from them when the pipeline starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    pub detector: PathBuf,
    pub recognizer: PathBuf,
    pub swapper: PathBuf,
    pub enhancer: PathBuf,
    pub landmarks: PathBuf,
}

impl ModelFiles {
    /// The Deep-Live-Cam file names in `dir`.
    pub fn in_dir(dir: &Path) -> ModelFiles {
        let file = |role: Role| dir.join(role.default_file());
        ModelFiles {
            detector: file(Role::Detector),
            recognizer: file(Role::Recognizer),
            swapper: file(Role::Swapper),
            enhancer: file(Role::Enhancer),
            landmarks: file(Role::Landmarks),
        }
    }

    /// The file of `role`.
    pub fn get(&self, role: Role) -> &Path {
        match role {
            Role::Detector => &self.detector,
            Role::Recognizer => &self.recognizer,
            Role::Swapper => &self.swapper,
            Role::Enhancer => &self.enhancer,
            Role::Landmarks => &self.landmarks,
        }
    }

    fn get_mut(&mut self, role: Role) -> &mut PathBuf {
        match role {
            Role::Detector => &mut self.detector,
            Role::Recognizer => &mut self.recognizer,
            Role::Swapper => &mut self.swapper,
            Role::Enhancer => &mut self.enhancer,
            Role::Landmarks => &mut self.landmarks,
        }
    }
}

/// Everything a pipeline run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub source: SourceSpec,
    pub sink: SinkSpec,
    pub models: ModelFiles,
    /// Where variants made on demand are written (`None`: beside each original).
    pub variant_dir: Option<PathBuf>,
    /// Execution settings per role and camera settings.
    pub profile: Profile,
    /// Photo of the face swapped in (its largest face); `None`: the built-in `astronaut.png`.
    pub identity: Option<PathBuf>,
    /// Detect every n-th frame (≥ 1).
    pub detection_interval: usize,
    /// Enhance every k-th frame; 0 = enhancer off.
    pub enhancer_interval: usize,
    /// Swap every face instead of the largest.
    pub many_faces: bool,
    /// Most faces swapped in many-faces mode.
    pub max_faces: usize,
    /// Keep the real mouth (runs the 106-point landmark model).
    pub mouth_mask: bool,
    /// Adaptive mode's target FPS.
    pub adaptive_target_fps: Option<f64>,
    /// Frames measured before adaptive mode chooses.
    pub probe_frames: usize,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Stop after this many seconds.
    pub seconds: Option<f64>,
    /// Capture queue capacity.
    pub queue_depth: usize,
    /// Pace offline sources at their nominal FPS and drop frames like a camera.
    pub realtime: bool,
    /// Detector input side when the model leaves it dynamic (det_10g): default 640.
    pub detector_side: Option<usize>,
    /// GPU readings during the run: NVML (default), none, or fixed readings (tests).
    pub gpu: GpuChoice,
}

impl Config {
    /// Defaults from `profile` (intervals, many-faces, camera size for the synthetic source) with
    /// models in `models_dir`.
    pub fn new(profile: Profile, models_dir: &Path) -> Config {
        let p = &profile.pipeline;
        let synthetic = SyntheticConfig {
            width: profile.camera.width,
            height: profile.camera.height,
            fps: profile.camera.fps as f64,
            ..SyntheticConfig::default()
        };
        Config {
            source: SourceSpec::Synthetic(synthetic),
            sink: SinkSpec::Null,
            models: ModelFiles::in_dir(models_dir),
            variant_dir: None,
            identity: None,
            detection_interval: p.detection_interval.max(1),
            enhancer_interval: p.enhancer_interval,
            many_faces: p.many_faces,
            max_faces: 8,
            mouth_mask: false,
            adaptive_target_fps: None,
            probe_frames: 30,
            frames: None,
            seconds: None,
            queue_depth: 2,
            realtime: false,
            detector_side: None,
            gpu: GpuChoice::Nvml,
            profile,
        }
    }
}

fn session(profile: &Profile, role: Role) -> (crate::runtime::SessionConfig, bool) {
    (profile.session_config(role), profile.roles.get(role).io_binding)
}

/// The largest face in `frame`, or an error naming `what`.
fn largest_face(det: &mut detect::Detector, frame: &Frame, what: &str) -> Result<detect::Face> {
    let d = det.detect(frame)?;
    let rejected = d.rejected;
    d.faces.into_iter().max_by(|a, b| a.area().total_cmp(&b.area())).with_context(|| match rejected {
        0 => format!("no face found in {what}"),
        n => format!(
            "no face found in {what}: {n} detections with NaN or infinite values were discarded (is {} a working \
             detector?)",
            det.path().display()
        ),
    })
}

/// Refuses, before any session is built, a model file given for a role whose I/O does not fit it
/// (a detector saved under the swapper's name), then a missing one with how to get it: a wrong file
/// is named first, whatever the roles' order. Originals are checked: a fused-I/O variant changes its
/// signature on purpose.
fn check_roles(models: &ModelFiles, used: &[Role]) -> Result<()> {
    for &role in used {
        let path = models.get(role);
        if path.is_file() {
            let model = crate::onnx::Model::load(path)?;
            crate::models::signature::check(&model, role, &path.display().to_string())?;
        }
    }
    if let Some(&role) = used.iter().find(|&&r| !models.get(r).is_file()) {
        bail!(
            "the {} model {} is missing: get it with `faceperf models fetch` or `faceperf models import DIR`, \
             pass --models DIR with the Deep-Live-Cam files, or leave out --models to run on generated replicas",
            role.name(),
            models.get(role).display()
        );
    }
    Ok(())
}

/// The files the run loads: each used role's original, checked, then swapped for the variant the
/// profile asks for (reused from the cache or made now, proven equivalent first). Returns the
/// files and one note per variant.
fn resolve_models(rt: &Runtime, cfg: &Config, used: &[Role]) -> Result<(ModelFiles, Vec<String>)> {
    let mut files = cfg.models.clone();
    let mut notes = Vec::new();
    check_roles(&cfg.models, used)?;
    for &role in used {
        let original = cfg.models.get(role);
        let variant = cfg.profile.roles.get(role).variant;
        if let Some(o) = crate::optimize::variant_of(rt, original, role, variant, cfg.variant_dir.as_deref(), None)
            .with_context(|| format!("the {variant} variant of the {} {}", role.name(), original.display()))?
        {
            notes.push(format!(
                "{}: {} ({variant} variant, {})",
                role.name(),
                o.variant.display(),
                match (o.action, o.sidecar.equivalence.quality) {
                    (crate::optimize::Action::Created, false) => "made now, proven equivalent".to_string(),
                    (crate::optimize::Action::Created, true) => {
                        format!("made now, within its quality bar: {}", o.sidecar.equivalence.quality_figures())
                    }
                    (crate::optimize::Action::Reused, false) => "cached".to_string(),
                    (crate::optimize::Action::Reused, true) => {
                        format!("cached, approximate: {}", o.sidecar.equivalence.quality_figures())
                    }
                }
            ));
            *files.get_mut(role) = o.variant;
        }
    }
    Ok((files, notes))
}

/// Runs the pipeline described by `cfg` and returns its measurements.
pub fn run(rt: &Runtime, cfg: &Config) -> Result<MeasureReport> {
    if cfg.detection_interval == 0 {
        bail!("the detection interval must be at least 1");
    }
    if cfg.frames == Some(0) {
        bail!("--frames must be at least 1");
    }
    let p = &cfg.profile;
    // The source first: a missing camera or file fails before models load; so does a sink that
    // cannot open (no ffmpeg, no display), although it opens only once the models are ready.
    let src = source::open(&cfg.source, &p.camera)?;
    sink::check(&cfg.sink)?;
    let mut used = vec![Role::Detector, Role::Recognizer, Role::Swapper];
    if cfg.enhancer_interval > 0 {
        used.push(Role::Enhancer);
    }
    if cfg.mouth_mask {
        used.push(Role::Landmarks);
    }
    let (files, variant_notes) = resolve_models(rt, cfg, &used)?;
    let (dc, db) = session(p, Role::Detector);
    let mut detector = detect::Detector::load(rt, &files.detector, &dc, db, cfg.detector_side)?;
    detector.params.max_faces = if cfg.many_faces { cfg.max_faces.max(1) } else { 0 };

    // A replica detector (random weights) finds no real face: it still runs on every detected
    // frame for its cost, and the later stages take the faces the synthetic source placed.
    let replica_detector = crate::models::synth::is_replica(&cfg.models.detector);
    let source_faces = replica_detector && matches!(cfg.source, SourceSpec::Synthetic(_));
    // The identity: the largest face of the photo, embedded once (the built-in photo's face is
    // known, which a replica detector needs).
    let (identity, identity_name) = crate::util::assets::photo_or_astronaut(cfg.identity.as_deref())?;
    let photo = Frame::from_rgb_image(identity);
    let source_face = if replica_detector && cfg.identity.is_none() {
        source::astronaut_face()
    } else {
        largest_face(&mut detector, &photo, &format!("the identity photo {identity_name}"))?
    };
    let (rc, rb) = session(p, Role::Recognizer);
    // What loading each model reported (a CUDA-graph fallback), tagged with its role.
    let tagged =
        |role: Role, notes: &[String]| notes.iter().map(|n| format!("{}: {n}", role.name())).collect::<Vec<_>>();
    let mut load_notes = tagged(Role::Detector, detector.notes());
    let embedding = {
        let mut rec = stages::Recogniser::load(rt, &files.recognizer, &rc, rb)?;
        load_notes.extend(tagged(Role::Recognizer, rec.notes()));
        rec.embed(&photo, &source_face)?
    };
    let (sc, sb) = session(p, Role::Swapper);
    let mut swapper = stages::Swapper::load(rt, &files.swapper, &sc, sb)?;
    let latent = swapper.latent(&embedding)?;
    let enhancer = if cfg.enhancer_interval > 0 {
        let (ec, eb) = session(p, Role::Enhancer);
        Some(stages::Enhancer::load(rt, &files.enhancer, &ec, eb)?)
    } else {
        None
    };
    let landmarker = if cfg.mouth_mask {
        let (lc, lb) = session(p, Role::Landmarks);
        Some(stages::Landmarker::load(rt, &files.landmarks, &lc, lb)?)
    } else {
        None
    };
    load_notes.extend(tagged(Role::Swapper, swapper.notes()));
    load_notes.extend(enhancer.iter().flat_map(|e| tagged(Role::Enhancer, e.notes())));
    load_notes.extend(landmarker.iter().flat_map(|l| tagged(Role::Landmarks, l.notes())));
    // Warm-up outside the measurement: the first run of a session allocates and plans.
    swapper.swap(&photo, &source_face, &latent)?;
    let mut st = scheduler::Stages { swapper, enhancer, landmarker, latent };
    if let Some(e) = st.enhancer.as_mut() {
        e.enhance(&photo, &source_face, u64::MAX, true)?;
        e.retain(&[]);
    }
    if let Some(l) = st.landmarker.as_mut() {
        l.landmarks(&photo, &source_face)?;
    }

    let description = src.describe();
    let fps = src.nominal_fps().unwrap_or(30.0);
    let (w, h) = match &cfg.source {
        SourceSpec::Synthetic(s) => (s.width, s.height),
        _ => (p.camera.width, p.camera.height),
    };
    let mut sink = sink::open(&cfg.sink, w, h, fps)?;
    let settings = scheduler::Settings {
        detection_interval: cfg.detection_interval,
        enhancer_interval: cfg.enhancer_interval,
        many_faces: cfg.many_faces,
        max_faces: cfg.max_faces,
        mouth_mask: cfg.mouth_mask,
        frames: cfg.frames,
        seconds: cfg.seconds,
        queue_depth: cfg.queue_depth,
        realtime: cfg.realtime,
        adaptive: cfg.adaptive_target_fps.map(|t| (t, cfg.probe_frames)),
        source_faces,
    };
    let sink_desc = sink.describe();
    let monitor = Monitor::start(Duration::from_millis(100), cfg.gpu.sampler(), 0.0);
    let result = scheduler::run(&mut detector, &mut st, src, sink.as_mut(), &settings);
    let monitor = monitor.finish();
    let mut report = result?;
    report.verdict = bottleneck::verdict(&report, monitor.gpu_util_median());
    report.monitor = Some(monitor);
    report.source = description;
    report.notes.push(format!("sink: {sink_desc}"));
    report.notes.extend(variant_notes);
    report.notes.extend(load_notes);
    report.models = used.iter().map(|&r| (r.name().to_string(), files.get(r).display().to_string())).collect();
    report.faces_from = if source_faces { FacesFrom::Source } else { FacesFrom::Detector };
    if source_faces {
        report.notes.push(format!(
            "faces: the detector {} is a replica (random weights): it ran for its cost, and the later stages used \
             the faces the synthetic source placed",
            cfg.models.detector.display()
        ));
    } else if replica_detector {
        report.notes.push(format!(
            "faces: the detector {} is a replica (random weights) and the source does not know its faces: what it \
             finds is noise",
            cfg.models.detector.display()
        ));
    }
    let loaded: Vec<(Role, &Path)> = used.iter().map(|&r| (r, files.get(r))).collect();
    report.provenance = Some(crate::provenance::Provenance::collect(rt, p, &loaded, |r| {
        if r == Role::Detector {
            replica_detector
        } else {
            crate::models::synth::is_replica(cfg.models.get(r))
        }
    })?);
    Ok(report)
}

/// Where a run's GPU readings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuChoice {
    /// NVML's GPU 0; without an NVIDIA driver the report says so once and the run goes on.
    Nvml,
    /// No GPU sampling.
    Off,
    /// The same readings every sample ([`gpu_monitor::FixedSampler`]): exercises the GPU code path
    /// on machines without one.
    Fixed(gpu_monitor::GpuSample),
}

impl GpuChoice {
    /// The sampler, or why there is none.
    pub fn sampler(&self) -> std::result::Result<Box<dyn gpu_monitor::GpuSampler>, String> {
        match self {
            GpuChoice::Nvml => gpu_monitor::default_sampler(),
            GpuChoice::Off => Err("GPU sampling off".into()),
            GpuChoice::Fixed(g) => Ok(Box::new(gpu_monitor::FixedSampler(*g))),
        }
    }
}

/// Session settings for tests and examples: every role on the CPU provider with `threads` threads.
pub fn cpu_profile(threads: usize) -> Profile {
    let mut p = Profile::builtin("cpu")
        .map(|l| l.profile)
        .unwrap_or_else(|_| Profile::parse("name = \"cpu\"", "default").expect("a minimal profile parses"));
    p.threads.intra = threads;
    for role in Role::ALL {
        p.roles.get_mut(role).intra_threads = None;
    }
    p
}
