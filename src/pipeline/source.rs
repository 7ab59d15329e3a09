//! Frame sources: a synthetic scene (a real face photo moving and scaling over a background,
//! deterministic), an image sequence, a video file (through an `ffmpeg` subprocess), and a camera
//! (cargo feature `camera`).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::detect::Face;
use super::frame::{Frame, PixelFormat};

/// What the other sources are, for messages when one is unavailable.
pub const SOURCES_HINT: &str =
    "other sources: --source synthetic (a moving face photo, no hardware), --source video:PATH (needs ffmpeg), \
     --source images:DIR (a folder of PNG/JPEG frames)";

/// A producer of frames.
pub trait Source: Send {
    /// One line saying what it is and what it negotiated.
    fn describe(&self) -> String;
    /// Frames per second the source runs at (camera: measured; video: the file's), if it has a rate.
    fn nominal_fps(&self) -> Option<f64>;
    /// True for live sources (cameras): frames keep coming whether or not the pipeline keeps up, so
    /// the pipeline drops the oldest instead of slowing the source down.
    fn is_live(&self) -> bool {
        false
    }
    /// Frames the source itself dropped because the pipeline was busy (cameras).
    fn dropped(&self) -> u64 {
        0
    }
    /// The next frame, or `None` at the end of the stream.
    fn next_frame(&mut self) -> Result<Option<Frame>>;
    /// Where the faces are in the frame [`Source::next_frame`] returned last, when the source knows
    /// (the synthetic source places them): ground truth for runs whose detector is a replica with
    /// random weights, which finds no real face.
    fn last_frame_faces(&self) -> Option<Vec<Face>> {
        None
    }
}

/// Which source to open, as given on the command line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SourceSpec {
    /// `synthetic`.
    Synthetic(SyntheticConfig),
    /// `camera` or `camera:N`.
    Camera(u32),
    /// `video:PATH`.
    Video(PathBuf),
    /// `images:DIR`.
    Images(PathBuf),
}

impl SourceSpec {
    /// Parses `synthetic`, `camera[:N]`, `video:PATH` or `images:DIR`.
    pub fn parse(s: &str) -> Result<SourceSpec> {
        let (kind, rest) = match s.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (s, None),
        };
        Ok(match (kind, rest) {
            ("synthetic", None) => SourceSpec::Synthetic(SyntheticConfig::default()),
            ("camera", None) => SourceSpec::Camera(0),
            ("camera", Some(n)) => {
                SourceSpec::Camera(n.parse().with_context(|| format!("camera index '{n}' is not a number"))?)
            }
            ("video", Some(p)) if !p.is_empty() => SourceSpec::Video(PathBuf::from(p)),
            ("images", Some(p)) if !p.is_empty() => SourceSpec::Images(PathBuf::from(p)),
            _ => bail!("source '{s}' is not one of synthetic, camera[:N], video:PATH, images:DIR"),
        })
    }
}

/// Opens the source `spec`; `camera` gives the requested capture settings for cameras.
pub fn open(spec: &SourceSpec, camera: &crate::profile::Camera) -> Result<Box<dyn Source>> {
    Ok(match spec {
        SourceSpec::Synthetic(cfg) => Box::new(Synthetic::new(cfg.clone())?),
        SourceSpec::Images(dir) => Box::new(ImageSequence::open(dir)?),
        SourceSpec::Video(path) => Box::new(VideoFile::open(path)?),
        SourceSpec::Camera(index) => open_camera(*index, camera)?,
    })
}

#[cfg(feature = "camera")]
fn open_camera(index: u32, camera: &crate::profile::Camera) -> Result<Box<dyn Source>> {
    Ok(Box::new(super::camera::CameraSource::open(index, camera)?))
}

#[cfg(not(feature = "camera"))]
fn open_camera(index: u32, _camera: &crate::profile::Camera) -> Result<Box<dyn Source>> {
    bail!(
        "camera {index}: this faceperf was built without camera support (rebuild with `cargo build --release --features camera`); {SOURCES_HINT}"
    )
}

// ---------------------------------------------------------------------------------------------------
// Synthetic

/// Settings of the synthetic source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticConfig {
    pub width: u32,
    pub height: u32,
    /// Faces in the scene.
    pub faces: usize,
    /// Frame rate the motion is timed in (frame `i` shows time `i / fps`).
    pub fps: f64,
    /// The face photo and the square face box in it (x, y, side); `None`: the built-in
    /// `astronaut.png`.
    pub face_image: Option<(PathBuf, (u32, u32, u32))>,
    /// Background photo (scaled to cover the frame); `None`: the built-in `coffee.png`.
    pub background: Option<PathBuf>,
    /// Frames before the end of the stream (`None`: endless).
    pub frames: Option<u64>,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            width: 960,
            height: 540,
            faces: 1,
            fps: 30.0,
            face_image: None,
            background: None,
            frames: None,
        }
    }
}

/// A face patch with a soft elliptical alpha edge, RGBA-like (alpha 0..=255 separate).
struct Patch {
    side: u32,
    rgb: Vec<u8>,
    alpha: Vec<u8>,
    /// The face inside the patch, in patch pixels.
    face: Face,
}

/// The face of the built-in astronaut photo, in photo pixels (score 1: it is known, not detected).
pub fn astronaut_face() -> Face {
    Face { bbox: crate::util::assets::ASTRONAUT_FACE_BOX, score: 1.0, kps: crate::util::assets::ASTRONAUT_FACE_KPS }
}

/// `f` scaled by `s` about the origin, then moved by (`dx`, `dy`).
fn shift_face(f: &Face, dx: f32, dy: f32, s: f32) -> Face {
    let [x1, y1, x2, y2] = f.bbox;
    Face {
        bbox: [x1 * s + dx, y1 * s + dy, x2 * s + dx, y2 * s + dy],
        score: f.score,
        kps: f.kps.map(|[x, y]| [x * s + dx, y * s + dy]),
    }
}

/// A face photo given as a square box only: keypoints where ArcFace's 112×112 alignment template
/// puts them inside that box (an estimate; the built-in photo's are measured).
fn template_face(b: (u32, u32, u32)) -> Face {
    let (x, y, side) = b;
    Face {
        bbox: [x as f32, y as f32, (x + side) as f32, (y + side) as f32],
        score: 1.0,
        kps: Synthetic::template_keypoints(b),
    }
}

/// A real face photo moving along smooth paths and breathing in size over a fixed background.
/// Frame `i` depends only on `i` and the settings.
pub struct Synthetic {
    cfg: SyntheticConfig,
    background: Frame,
    patch: Patch,
    index: u64,
}

/// Scales `img` to cover `w × h` (keeping its aspect), centre-cropped.
fn cover(img: &image::RgbImage, w: u32, h: u32) -> Frame {
    let (iw, ih) = img.dimensions();
    let s = (w as f32 / iw as f32).max(h as f32 / ih as f32);
    let (nw, nh) = (((iw as f32 * s).ceil() as u32).max(w), ((ih as f32 * s).ceil() as u32).max(h));
    let scaled = image::imageops::resize(img, nw, nh, image::imageops::FilterType::Triangle);
    let crop = image::imageops::crop_imm(&scaled, (nw - w) / 2, (nh - h) / 2, w, h).to_image();
    Frame::from_rgb_image(crop)
}

impl Synthetic {
    /// Prepares the background and face patch.
    pub fn new(cfg: SyntheticConfig) -> Result<Synthetic> {
        if cfg.width < 64 || cfg.height < 64 || cfg.faces == 0 || cfg.fps.is_nan() || cfg.fps <= 0.0 {
            bail!("synthetic source: need at least 64×64 pixels, one face and a positive fps");
        }
        let (photo, face_box, face_in_photo) = match &cfg.face_image {
            Some((p, b)) => {
                let photo =
                    image::open(p).with_context(|| format!("{}: cannot decode the face photo", p.display()))?.to_rgb8();
                (photo, *b, template_face(*b))
            }
            None => (crate::util::assets::astronaut()?, crate::bench::inputs::ASTRONAUT_FACE, astronaut_face()),
        };
        // The head with some context: 1.8× the face box, centred on it, clipped to the photo.
        let (fx, fy, fs) = face_box;
        let (cx, cy) = (fx as f32 + fs as f32 / 2.0, fy as f32 + fs as f32 / 2.0);
        let side = ((fs as f32 * 1.8) as u32).min(photo.width()).min(photo.height()).max(8);
        let x0 = (cx - side as f32 / 2.0).clamp(0.0, (photo.width() - side) as f32) as u32;
        let y0 = (cy - side as f32 / 2.0).clamp(0.0, (photo.height() - side) as f32) as u32;
        let head = image::imageops::crop_imm(&photo, x0, y0, side, side).to_image();
        let mut alpha = vec![0u8; (side * side) as usize];
        let c = side as f32 / 2.0;
        for y in 0..side {
            for x in 0..side {
                let (dx, dy) =
                    ((x as f32 + 0.5 - c) / (0.47 * side as f32), (y as f32 + 0.5 - c) / (0.5 * side as f32));
                let r = (dx * dx + dy * dy).sqrt();
                alpha[(y * side + x) as usize] = (((1.0 - r) / 0.12).clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
        // The face in patch pixels: where every rendered face is, scaled and moved with the patch.
        let face = shift_face(&face_in_photo, -(x0 as f32), -(y0 as f32), 1.0);
        let patch = Patch { side, rgb: head.into_raw(), alpha, face };

        let background = match &cfg.background {
            Some(p) => cover(
                &image::open(p).with_context(|| format!("{}: cannot decode the background", p.display()))?.to_rgb8(),
                cfg.width,
                cfg.height,
            ),
            None => cover(&crate::util::assets::coffee()?, cfg.width, cfg.height),
        };
        Ok(Synthetic { cfg, background, patch, index: 0 })
    }

    /// The five keypoints the source assumes for a face photo given as the square box `(x, y, side)`:
    /// ArcFace's 112×112 alignment template scaled into the box.
    pub fn template_keypoints((x, y, side): (u32, u32, u32)) -> [[f32; 2]; 5] {
        let s = side as f32 / 112.0;
        crate::pipeline::align::ARCFACE_112.map(|[u, v]| [x as f32 + u * s, y as f32 + v * s])
    }

    /// The faces of frame `i` as the source placed them (ground truth): box, the five keypoints and
    /// score 1, in frame pixels, one per face in the scene.
    pub fn faces(&self, i: u64) -> Vec<Face> {
        (0..self.cfg.faces)
            .map(|j| {
                let (x0, y0, side) = self.placement(i, j);
                shift_face(&self.patch.face, x0, y0, side / self.patch.side as f32)
            })
            .collect()
    }

    /// Where face `j` is in frame `i`: top-left corner and side in pixels.
    pub fn placement(&self, i: u64, j: usize) -> (f32, f32, f32) {
        let (w, h) = (self.cfg.width as f32, self.cfg.height as f32);
        let n = self.cfg.faces as f32;
        let t = i as f64 / self.cfg.fps;
        let phase = std::f64::consts::TAU * j as f64 / self.cfg.faces as f64;
        let wave = |freq: f64| (std::f64::consts::TAU * freq * t + phase).sin() as f32;
        let base = (0.5 * h).min(0.85 * w / n);
        let side = base * (1.0 + 0.2 * wave(0.07));
        // Each face keeps to its own column and sways within it.
        let col = w / n;
        let cx = col * (j as f32 + 0.5) + 0.25 * (col - side).max(0.0) * wave(0.13);
        let cy = h / 2.0 + 0.3 * (h - side).max(0.0) * wave(0.21);
        (cx - side / 2.0, cy - side / 2.0, side)
    }

    /// Renders frame `i`.
    pub fn render(&self, i: u64) -> Frame {
        let mut f = self.background.clone();
        for j in 0..self.cfg.faces {
            let (x0, y0, side) = self.placement(i, j);
            self.blit(&mut f, x0, y0, side);
        }
        f
    }

    /// Draws the face patch scaled to `side` at (`x0`, `y0`), alpha-blended. Bilinear taps with
    /// 8-bit fixed-point weights, the column taps computed once per blit: a 1080p frame with a
    /// large face renders in a few milliseconds, so the source is not what limits a pipeline.
    fn blit(&self, f: &mut Frame, x0: f32, y0: f32, side: f32) {
        let p = &self.patch;
        let ps = p.side as usize;
        let scale = p.side as f32 / side;
        let xa = x0.floor().max(0.0) as u32;
        let ya = y0.floor().max(0.0) as u32;
        let xb = ((x0 + side).ceil() as u32).min(f.width);
        let yb = ((y0 + side).ceil() as u32).min(f.height);
        // One tap per axis: first source index and the 0..=256 weight of the next one.
        let tap = |d: u32, o: f32| -> (usize, u32) {
            let u = ((d as f32 + 0.5 - o) * scale - 0.5).clamp(0.0, (ps - 1) as f32);
            let i = (u as usize).min(ps.saturating_sub(2));
            (i, ((u - i as f32).min(1.0) * 256.0).round() as u32)
        };
        let cols: Vec<(usize, u32)> = (xa..xb).map(|x| tap(x, x0)).collect();
        let stride = f.stride();
        let lerp2 = |a: u32, b: u32, c: u32, d: u32, wx: u32, wy: u32| -> u32 {
            let top = a * (256 - wx) + b * wx;
            let bot = c * (256 - wx) + d * wx;
            (top * (256 - wy) + bot * wy + 32768) >> 16
        };
        for y in ya..yb {
            let (vi, wy) = tap(y, y0);
            let (r0, r1) = (vi * ps, (vi + 1).min(ps - 1) * ps);
            let row = &mut f.data[y as usize * stride..(y as usize + 1) * stride];
            for (x, &(ui, wx)) in (xa..xb).zip(&cols) {
                let u1 = (ui + 1).min(ps - 1);
                let al = &p.alpha;
                let a = lerp2(al[r0 + ui] as u32, al[r0 + u1] as u32, al[r1 + ui] as u32, al[r1 + u1] as u32, wx, wy);
                if a == 0 {
                    continue;
                }
                let d = x as usize * 3;
                for ch in 0..3 {
                    let q = |r: usize, u: usize| p.rgb[(r + u) * 3 + ch] as u32;
                    let s = lerp2(q(r0, ui), q(r0, u1), q(r1, ui), q(r1, u1), wx, wy);
                    let dst = row[d + ch] as u32;
                    row[d + ch] = ((dst * (255 - a) + s * a + 127) / 255) as u8;
                }
            }
        }
    }
}

impl Source for Synthetic {
    fn describe(&self) -> String {
        format!(
            "synthetic {}×{}, {} face{} moving and scaling at {} fps timing",
            self.cfg.width,
            self.cfg.height,
            self.cfg.faces,
            if self.cfg.faces == 1 { "" } else { "s" },
            self.cfg.fps
        )
    }

    fn nominal_fps(&self) -> Option<f64> {
        Some(self.cfg.fps)
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.cfg.frames.is_some_and(|n| self.index >= n) {
            return Ok(None);
        }
        let f = self.render(self.index);
        self.index += 1;
        Ok(Some(f))
    }

    fn last_frame_faces(&self) -> Option<Vec<Face>> {
        self.index.checked_sub(1).map(|i| self.faces(i))
    }
}

// ---------------------------------------------------------------------------------------------------
// Image sequence

/// The image files of a folder, in name order.
pub struct ImageSequence {
    dir: PathBuf,
    files: Vec<PathBuf>,
    next: usize,
}

/// Extensions the image sequence reads.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

impl ImageSequence {
    /// Lists `dir`'s PNG and JPEG files.
    pub fn open(dir: &Path) -> Result<ImageSequence> {
        let entries =
            std::fs::read_dir(dir).with_context(|| format!("images:{}: cannot read the folder", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            })
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("images:{}: no .png, .jpg or .jpeg files", dir.display());
        }
        Ok(ImageSequence { dir: dir.to_path_buf(), files, next: 0 })
    }
}

impl Source for ImageSequence {
    fn describe(&self) -> String {
        format!("images {} ({} files)", self.dir.display(), self.files.len())
    }

    fn nominal_fps(&self) -> Option<f64> {
        None
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let Some(p) = self.files.get(self.next) else { return Ok(None) };
        self.next += 1;
        let img = image::open(p).with_context(|| format!("{}: cannot decode", p.display()))?.to_rgb8();
        Ok(Some(Frame::from_rgb_image(img)))
    }
}

// ---------------------------------------------------------------------------------------------------
// Video file

/// True when `tool -version` runs.
pub fn have_tool(tool: &str) -> bool {
    Command::new(tool).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// A video decoded by an `ffmpeg` subprocess into raw RGB frames on a pipe.
pub struct VideoFile {
    path: PathBuf,
    width: u32,
    height: u32,
    fps: Option<f64>,
    child: Child,
    stdout: ChildStdout,
}

/// Parses ffprobe's `r_frame_rate` (`30000/1001`).
fn parse_rate(s: &str) -> Option<f64> {
    let (n, d) = s.trim().split_once('/').unwrap_or((s.trim(), "1"));
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (d > 0.0 && n > 0.0).then_some(n / d)
}

impl VideoFile {
    /// Probes the file's size and rate with `ffprobe` and starts `ffmpeg` decoding it.
    pub fn open(path: &Path) -> Result<VideoFile> {
        if !path.is_file() {
            bail!("video:{}: no such file", path.display());
        }
        if !have_tool("ffmpeg") || !have_tool("ffprobe") {
            bail!(
                "video:{}: video files are decoded by ffmpeg, which is not on PATH (install ffmpeg, or extract the \
                 frames to a folder and use --source images:DIR); {SOURCES_HINT}",
                path.display()
            );
        }
        let probe = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,r_frame_rate"])
            .args(["-of", "csv=p=0"])
            .arg(path)
            .output()
            .context("running ffprobe")?;
        let text = String::from_utf8_lossy(&probe.stdout);
        let fields: Vec<&str> = text.trim().split(',').collect();
        let (width, height) = match fields.as_slice() {
            [w, h, ..] => (w.parse::<u32>().ok(), h.parse::<u32>().ok()),
            _ => (None, None),
        };
        let (Some(width), Some(height)) = (width, height) else {
            bail!(
                "video:{}: ffprobe found no video stream ({})",
                path.display(),
                String::from_utf8_lossy(&probe.stderr).trim()
            );
        };
        let fps = fields.get(2).and_then(|r| parse_rate(r));
        let mut child = Command::new("ffmpeg")
            .args(["-v", "error", "-nostdin", "-i"])
            .arg(path)
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting ffmpeg")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("ffmpeg has no stdout"))?;
        Ok(VideoFile { path: path.to_path_buf(), width, height, fps, child, stdout })
    }
}

impl Source for VideoFile {
    fn describe(&self) -> String {
        let rate = self.fps.map(|f| format!(" at {f:.2} fps")).unwrap_or_default();
        format!("video {} ({}×{}{rate}, decoded by ffmpeg)", self.path.display(), self.width, self.height)
    }

    fn nominal_fps(&self) -> Option<f64> {
        self.fps
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        let mut data = vec![0u8; self.width as usize * self.height as usize * 3];
        let mut filled = 0;
        while filled < data.len() {
            match self.stdout.read(&mut data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading frames from ffmpeg"),
            }
        }
        if filled < data.len() {
            return Ok(None);
        }
        Ok(Some(Frame::from_raw(self.width, self.height, PixelFormat::Rgb, data)?))
    }
}

impl Drop for VideoFile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
