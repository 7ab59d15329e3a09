//! Camera source through `nokhwa` (cargo feature `camera`): negotiate a format, measure the frame
//! rate the camera really delivers, decode MJPEG/YUYV/NV12/RGB to frames.
//!
//! Negotiation asks for the profile's format first, then MJPEG at 1920×1080, 1280×720 and 960×540
//! at 60 fps, then the camera's highest frame rate in any format. Drivers often accept a rate they
//! do not deliver (exposure, USB bandwidth), so the delivered rate is measured over the first frames
//! and reported beside what was negotiated.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType};
use nokhwa::Camera;

use super::frame::{Frame, PixelFormat};
use super::queue::{BoundedQueue, WhenFull};
use super::source::{Source, SOURCES_HINT};

/// Frames used to measure the delivered rate.
pub const RATE_PROBE_FRAMES: usize = 30;

/// The MJPEG ladder tried after the profile's own request.
pub const LADDER: [(u32, u32, u32); 3] = [(1920, 1080, 60), (1280, 720, 60), (960, 540, 60)];

/// One undecoded camera buffer.
struct Raw {
    data: Vec<u8>,
    width: u32,
    height: u32,
    format: FrameFormat,
}

/// What negotiation settled on.
struct Negotiated {
    name: String,
    format: CameraFormat,
    delivered_fps: Option<f64>,
}

/// A camera delivering frames. nokhwa's `Camera` may not move between threads, so it lives on a
/// thread of its own that hands raw buffers over through a one-slot queue dropping the oldest (a
/// camera must not wait for the pipeline); decoding happens on the capture thread, where it is timed.
pub struct CameraSource {
    index: u32,
    info: Negotiated,
    raw: Arc<BoundedQueue<Raw>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// nokhwa's frame format for a profile's `camera.format` name.
fn frame_format(name: &str) -> FrameFormat {
    match name.to_ascii_lowercase().as_str() {
        "yuyv" => FrameFormat::YUYV,
        "nv12" => FrameFormat::NV12,
        "rgb" | "rawrgb" => FrameFormat::RAWRGB,
        _ => FrameFormat::MJPEG,
    }
}

fn negotiate(index: u32, wanted: &crate::profile::Camera) -> Result<(Camera, Negotiated)> {
    let cams = nokhwa::query(ApiBackend::Auto).unwrap_or_default();
    if cams.is_empty() {
        bail!("camera {index}: no camera found; {SOURCES_HINT}");
    }
    let Some(info) = cams.iter().find(|c| c.index() == &CameraIndex::Index(index)) else {
        let names: Vec<String> = cams.iter().map(|c| format!("{} ({})", c.human_name(), c.index())).collect();
        bail!("camera {index} not found (cameras: {}); {SOURCES_HINT}", names.join(", "));
    };
    let name = info.human_name();
    let all = [FrameFormat::MJPEG, FrameFormat::YUYV, FrameFormat::NV12, FrameFormat::RAWRGB, FrameFormat::RAWBGR];
    let mut tries: Vec<RequestedFormatType> = vec![RequestedFormatType::Exact(CameraFormat::new_from(
        wanted.width,
        wanted.height,
        frame_format(&wanted.format),
        wanted.fps,
    ))];
    tries.extend(
        LADDER.iter().map(|&(w, h, f)| RequestedFormatType::Exact(CameraFormat::new_from(w, h, FrameFormat::MJPEG, f))),
    );
    tries.push(RequestedFormatType::AbsoluteHighestFrameRate);
    let mut last_err = None;
    let mut opened = None;
    for t in tries {
        let req = RequestedFormat::with_formats(t, &all);
        match Camera::new(CameraIndex::Index(index), req).and_then(|mut c| c.open_stream().map(|_| c)) {
            Ok(c) => {
                opened = Some(c);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some(mut cam) = opened else {
        bail!(
            "camera {index} ({name}): no format could be negotiated ({}); {SOURCES_HINT}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        );
    };
    let format = cam.camera_format();
    // The delivered rate: time the first frames (not decoded).
    let mut stamps = Vec::with_capacity(RATE_PROBE_FRAMES);
    for _ in 0..RATE_PROBE_FRAMES {
        cam.frame_raw().with_context(|| format!("camera {index} ({name}): reading a frame"))?;
        stamps.push(Instant::now());
    }
    let delivered_fps = match (stamps.first(), stamps.last()) {
        (Some(a), Some(b)) if b > a => Some((stamps.len() - 1) as f64 / (*b - *a).as_secs_f64()),
        _ => None,
    };
    Ok((cam, Negotiated { name, format, delivered_fps }))
}

impl CameraSource {
    /// Opens camera `index`, negotiates a format and measures the delivered rate.
    pub fn open(index: u32, wanted: &crate::profile::Camera) -> Result<CameraSource> {
        let raw = Arc::new(BoundedQueue::new(1, WhenFull::DropOldest));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<Result<Negotiated>>();
        let wanted = wanted.clone();
        let (q, halt) = (raw.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let (mut cam, info) = match negotiate(index, &wanted) {
                Ok(x) => x,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            let _ = tx.send(Ok(info));
            while !halt.load(Ordering::SeqCst) {
                match cam.frame() {
                    Ok(buf) => {
                        let res = buf.resolution();
                        let r = Raw {
                            data: buf.buffer().to_vec(),
                            width: res.width(),
                            height: res.height(),
                            format: buf.source_frame_format(),
                        };
                        if !q.push(r) {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            q.close();
            let _ = cam.stop_stream();
        });
        let info = rx.recv().map_err(|_| anyhow::anyhow!("camera {index}: the camera thread stopped"))??;
        Ok(CameraSource { index, info, raw, stop, thread: Some(thread) })
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.raw.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// BT.601 limited-range YUV to RGB.
fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = (y as i32 - 16).max(0) * 298;
    let d = u as i32 - 128;
    let e = v as i32 - 128;
    let clip = |x: i32| ((x + 128) >> 8).clamp(0, 255) as u8;
    [clip(c + 409 * e), clip(c - 100 * d - 208 * e), clip(c + 516 * d)]
}

/// Decodes one camera buffer of `format` into an RGB (or BGR) frame.
pub fn decode(data: &[u8], width: u32, height: u32, format: FrameFormat) -> Result<Frame> {
    let (w, h) = (width as usize, height as usize);
    match format {
        FrameFormat::MJPEG => {
            let img = image::load_from_memory_with_format(data, image::ImageFormat::Jpeg)
                .context("decoding an MJPEG frame")?
                .to_rgb8();
            Ok(Frame::from_rgb_image(img))
        }
        FrameFormat::YUYV => {
            if data.len() < w * h * 2 {
                bail!("YUYV frame too short: {} bytes for {w}×{h}", data.len());
            }
            let mut out = Frame::new(width, height, PixelFormat::Rgb);
            for (i, q) in data[..w * h * 2].chunks_exact(4).enumerate() {
                let (y0, u, y1, v) = (q[0], q[1], q[2], q[3]);
                out.data[i * 6..i * 6 + 3].copy_from_slice(&yuv_to_rgb(y0, u, v));
                out.data[i * 6 + 3..i * 6 + 6].copy_from_slice(&yuv_to_rgb(y1, u, v));
            }
            Ok(out)
        }
        FrameFormat::NV12 => {
            if data.len() < w * h * 3 / 2 {
                bail!("NV12 frame too short: {} bytes for {w}×{h}", data.len());
            }
            let (luma, chroma) = data.split_at(w * h);
            let mut out = Frame::new(width, height, PixelFormat::Rgb);
            for y in 0..h {
                for x in 0..w {
                    let c = (y / 2) * w + (x / 2) * 2;
                    let px = yuv_to_rgb(luma[y * w + x], chroma[c], chroma[c + 1]);
                    out.data[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&px);
                }
            }
            Ok(out)
        }
        FrameFormat::GRAY => {
            Frame::from_raw(width, height, PixelFormat::Rgb, data.iter().take(w * h).flat_map(|&g| [g, g, g]).collect())
        }
        FrameFormat::RAWRGB => {
            Frame::from_raw(width, height, PixelFormat::Rgb, data.get(..w * h * 3).unwrap_or(data).to_vec())
        }
        FrameFormat::RAWBGR => {
            Frame::from_raw(width, height, PixelFormat::Bgr, data.get(..w * h * 3).unwrap_or(data).to_vec())
        }
    }
}

impl Source for CameraSource {
    fn describe(&self) -> String {
        let f = &self.info.format;
        let measured = self
            .info
            .delivered_fps
            .map(|r| format!(", delivers {r:.1} fps (measured over {RATE_PROBE_FRAMES} frames)"))
            .unwrap_or_default();
        format!(
            "camera {} ({}): negotiated {} {}×{} at {} fps{measured}",
            self.index,
            self.info.name,
            f.format(),
            f.width(),
            f.height(),
            f.frame_rate()
        )
    }

    fn nominal_fps(&self) -> Option<f64> {
        self.info.delivered_fps.or(Some(self.info.format.frame_rate() as f64))
    }

    fn is_live(&self) -> bool {
        true
    }

    fn dropped(&self) -> u64 {
        self.raw.dropped()
    }

    fn next_frame(&mut self) -> Result<Option<Frame>> {
        match self.raw.pop() {
            Some(r) => Ok(Some(decode(&r.data, r.width, r.height, r.format)?)),
            None => Ok(None),
        }
    }
}
