//! Where processed frames go: nowhere (measurement), an image sequence, a video file (through an
//! `ffmpeg` subprocess), or a preview window (cargo feature `preview`, see [`super::preview`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::frame::{Frame, PixelFormat};

/// A consumer of frames.
///
/// Not `Send`: the scheduler calls it on the thread that runs the pipeline, which lets a window
/// live on the main thread (macOS requires that).
pub trait Sink {
    /// One line saying what it is.
    fn describe(&self) -> String;
    /// The channel order it wants (`None`: any).
    fn format(&self) -> Option<PixelFormat>;
    /// Takes frame number `index`.
    fn write(&mut self, frame: &Frame, index: u64) -> Result<()>;
    /// Flushes and closes.
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
    /// `Some(why)` when the sink's user asked to end the run (the preview window was closed);
    /// checked after every frame written. The run then ends like a run that reached its limit.
    fn stop_requested(&self) -> Option<String> {
        None
    }
}

/// Which sink to open.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum SinkSpec {
    /// `null`: frames are dropped after processing (what measurement uses).
    Null,
    /// `images:DIR`: `frame_000000.png`, … (`ppm:DIR` for uncompressed, fast PPM files).
    Images { dir: PathBuf, ppm: bool },
    /// `video:PATH`: encoded by ffmpeg (H.264 when the file name ends in .mp4/.mkv/.mov).
    Video(PathBuf),
    /// `window` or `window:TITLE`: a preview window (needs the cargo feature `preview`; always
    /// parsed, so a build without it can say so).
    Window { title: String },
}

/// The preview window's title when `window` names none.
pub const DEFAULT_TITLE: &str = "faceperf live";

impl SinkSpec {
    /// Parses `null`, `images:DIR`, `ppm:DIR`, `video:PATH`, `window` or `window:TITLE`.
    pub fn parse(s: &str) -> Result<SinkSpec> {
        Ok(match s.split_once(':') {
            None if s == "null" => SinkSpec::Null,
            None if s == "window" => SinkSpec::Window { title: DEFAULT_TITLE.into() },
            Some(("window", t)) => SinkSpec::Window { title: if t.is_empty() { DEFAULT_TITLE } else { t }.into() },
            Some(("images", d)) if !d.is_empty() => SinkSpec::Images { dir: d.into(), ppm: false },
            Some(("ppm", d)) if !d.is_empty() => SinkSpec::Images { dir: d.into(), ppm: true },
            Some(("video", p)) if !p.is_empty() => SinkSpec::Video(p.into()),
            _ => bail!("sink '{s}' is not one of null, images:DIR, ppm:DIR, video:PATH, window[:TITLE]"),
        })
    }
}

/// Opens the sink `spec` for frames of `width × height` at `fps` (video only). A window opens on
/// the calling thread.
pub fn open(spec: &SinkSpec, width: u32, height: u32, fps: f64) -> Result<Box<dyn Sink>> {
    Ok(match spec {
        SinkSpec::Null => Box::new(NullSink::default()),
        SinkSpec::Images { dir, ppm } => Box::new(ImageSink::new(dir, *ppm)?),
        SinkSpec::Video(p) => Box::new(VideoSink::open(p, width, height, fps)?),
        SinkSpec::Window { title } => open_window(title, width, height)?,
    })
}

/// Fails early, with the message [`open`] would give, when `spec` cannot open here: a build
/// without the preview window, no display, no ffmpeg. Cheap: it opens nothing.
pub fn check(spec: &SinkSpec) -> Result<()> {
    match spec {
        SinkSpec::Null | SinkSpec::Images { .. } => Ok(()),
        SinkSpec::Video(p) => VideoSink::check(p),
        SinkSpec::Window { .. } if cfg!(feature = "preview") => super::preview::check_display(&|k| std::env::var_os(k)),
        SinkSpec::Window { .. } => Err(no_preview()),
    }
}

fn no_preview() -> anyhow::Error {
    anyhow!(
        "window: this faceperf was built without the preview window (rebuild with `cargo build --release --features \
         preview`); use --sink null, images:DIR, ppm:DIR or video:PATH"
    )
}

#[cfg(feature = "preview")]
fn open_window(title: &str, width: u32, height: u32) -> Result<Box<dyn Sink>> {
    Ok(Box::new(super::preview::WindowSink::open(title, width, height)?))
}

#[cfg(not(feature = "preview"))]
fn open_window(_title: &str, _width: u32, _height: u32) -> Result<Box<dyn Sink>> {
    Err(no_preview())
}

/// Drops frames, keeping a checksum of one byte per frame so the work before it is not optimised away.
#[derive(Debug, Default)]
pub struct NullSink {
    /// Frames taken.
    pub frames: u64,
    checksum: u64,
}

impl Sink for NullSink {
    fn describe(&self) -> String {
        "null (frames are discarded)".into()
    }
    fn format(&self) -> Option<PixelFormat> {
        None
    }
    fn write(&mut self, frame: &Frame, _index: u64) -> Result<()> {
        self.frames += 1;
        self.checksum = self.checksum.wrapping_add(frame.data.get(frame.data.len() / 2).copied().unwrap_or(0) as u64);
        std::hint::black_box(self.checksum);
        Ok(())
    }
}

/// Writes numbered image files.
pub struct ImageSink {
    dir: PathBuf,
    ppm: bool,
}

impl ImageSink {
    /// Creates `dir` if needed.
    pub fn new(dir: &Path, ppm: bool) -> Result<ImageSink> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(ImageSink { dir: dir.to_path_buf(), ppm })
    }

    /// The file frame `index` goes to.
    pub fn path_of(&self, index: u64) -> PathBuf {
        self.dir.join(format!("frame_{index:06}.{}", if self.ppm { "ppm" } else { "png" }))
    }
}

impl Sink for ImageSink {
    fn describe(&self) -> String {
        format!("{} files in {}", if self.ppm { "PPM" } else { "PNG" }, self.dir.display())
    }
    fn format(&self) -> Option<PixelFormat> {
        Some(PixelFormat::Rgb)
    }
    fn write(&mut self, frame: &Frame, index: u64) -> Result<()> {
        if frame.format != PixelFormat::Rgb {
            bail!("image sink takes RGB frames");
        }
        let path = self.path_of(index);
        if self.ppm {
            let mut bytes = format!("P6\n{} {}\n255\n", frame.width, frame.height).into_bytes();
            bytes.extend_from_slice(&frame.data);
            std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
        } else {
            image::save_buffer(&path, &frame.data, frame.width, frame.height, image::ColorType::Rgb8)
                .with_context(|| format!("cannot write {}", path.display()))
        }
    }
}

/// Pipes raw RGB frames into an `ffmpeg` encoder.
pub struct VideoSink {
    path: PathBuf,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl VideoSink {
    /// Fails when ffmpeg is not on PATH.
    pub fn check(path: &Path) -> Result<()> {
        if !super::source::have_tool("ffmpeg") {
            bail!(
                "video:{}: writing video needs ffmpeg on PATH, which was not found; use --sink images:DIR or null",
                path.display()
            );
        }
        Ok(())
    }

    /// Starts ffmpeg writing `path`.
    pub fn open(path: &Path, width: u32, height: u32, fps: f64) -> Result<VideoSink> {
        VideoSink::check(path)?;
        let mut child = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"])
            .args(["-s", &format!("{width}x{height}"), "-r", &format!("{fps}"), "-i", "-"])
            .args(["-pix_fmt", "yuv420p"])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .context("starting ffmpeg")?;
        let stdin = child.stdin.take().ok_or_else(|| anyhow!("ffmpeg has no stdin"))?;
        Ok(VideoSink { path: path.to_path_buf(), child: Some(child), stdin: Some(stdin) })
    }
}

impl Sink for VideoSink {
    fn describe(&self) -> String {
        format!("video {} (encoded by ffmpeg)", self.path.display())
    }
    fn format(&self) -> Option<PixelFormat> {
        Some(PixelFormat::Rgb)
    }
    fn write(&mut self, frame: &Frame, _index: u64) -> Result<()> {
        let stdin = self.stdin.as_mut().ok_or_else(|| anyhow!("video sink already finished"))?;
        stdin.write_all(&frame.data).context("ffmpeg stopped taking frames")
    }
    fn finish(&mut self) -> Result<()> {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let status = c.wait().context("waiting for ffmpeg")?;
            if !status.success() {
                bail!("ffmpeg failed writing {} ({status})", self.path.display());
            }
        }
        Ok(())
    }
}

impl Drop for VideoSink {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}
