//! The window preview: frames shown in a desktop window as they leave the pipeline.
//!
//! [`PreviewBuffer`] turns a packed RGB/BGR frame into the `0RGB` `u32` pixels a window takes,
//! scaled down (nearest pixel, through precomputed row and column tables) to fit
//! [`MAX_SIZE`]; it reuses one buffer, so a frame costs no allocation. It is always built, so it
//! can be tested and benchmarked anywhere. [`WindowSink`] (cargo feature `preview`, through
//! `minifb`) shows that buffer; closing the window or pressing Esc ends the run.
//!
//! The window is created and updated on the thread that calls the scheduler (the main thread of
//! the CLI), which macOS requires; it never waits for a frame rate, so the preview does not pace
//! the pipeline.

use std::ffi::OsString;

use anyhow::{bail, Result};

use super::frame::{Frame, PixelFormat};

/// The largest preview, in pixels: bigger frames are scaled down to fit, keeping their aspect.
pub const MAX_SIZE: (u32, u32) = (1280, 720);

/// What the run's report says when the user closed the preview window.
pub const CLOSED: &str = "the preview window was closed";

/// The size `width × height` is shown at: itself when it fits in `max`, else scaled down to fit,
/// keeping the aspect ratio (each side at least 1).
pub fn fit(width: u32, height: u32, max: (u32, u32)) -> (u32, u32) {
    if width <= max.0 && height <= max.1 {
        return (width, height);
    }
    let s = (max.0 as f64 / width as f64).min(max.1 as f64 / height as f64);
    let side = |v: u32, m: u32| ((v as f64 * s).round() as u32).clamp(1, m);
    (side(width, max.0), side(height, max.1))
}

/// Fails with a one-line message when there is no display to open a window on: on Linux and the
/// BSDs the preview is an X11 window (XWayland on Wayland desktops), so `DISPLAY` must be set in
/// `env` (pass `|k| std::env::var_os(k)` for the process environment). Always `Ok` elsewhere.
pub fn check_display(env: &dyn Fn(&str) -> Option<OsString>) -> Result<()> {
    let set = |k: &str| env(k).is_some_and(|v| !v.is_empty());
    if cfg!(all(unix, not(target_os = "macos"))) && !set("DISPLAY") {
        if set("WAYLAND_DISPLAY") {
            bail!(
                "window: the preview is an X11 window and DISPLAY is unset (a Wayland session without XWayland?); \
                 use --sink null or --sink video:PATH"
            );
        }
        bail!(
            "window: no display to show the preview on (DISPLAY is unset: a server, a container or an SSH session \
             without X forwarding?); use --sink null or --sink video:PATH"
        );
    }
    Ok(())
}

/// A frame converted to `0RGB` pixels (`0x00RRGGBB`) at the preview size.
#[derive(Debug, Clone)]
pub struct PreviewBuffer {
    max: (u32, u32),
    src: (u32, u32),
    size: (u32, u32),
    /// Byte offset within a source row of each preview column's pixel.
    cols: Vec<usize>,
    /// Source row of each preview row.
    rows: Vec<usize>,
    pixels: Vec<u32>,
}

impl PreviewBuffer {
    /// A buffer for `width × height` frames shown within `max`.
    pub fn new(width: u32, height: u32, max: (u32, u32)) -> PreviewBuffer {
        let mut b = PreviewBuffer { max, src: (0, 0), size: (0, 0), cols: vec![], rows: vec![], pixels: vec![] };
        b.resize(width, height);
        b
    }

    /// Re-plans for frames of `width × height` (a no-op when that is the current size).
    pub fn resize(&mut self, width: u32, height: u32) {
        if self.src == (width, height) && !self.pixels.is_empty() {
            return;
        }
        let (w, h) = fit(width.max(1), height.max(1), self.max);
        // Nearest pixel by centre: destination pixel i samples source pixel ⌊(i + ½)·src/dst⌋.
        let map = |dst: u32, src: u32| -> Vec<usize> {
            (0..dst as u64).map(|i| ((2 * i + 1) * src as u64 / (2 * dst as u64)) as usize).collect()
        };
        self.cols = map(w, width).into_iter().map(|x| 3 * x).collect();
        self.rows = map(h, height);
        self.src = (width, height);
        self.size = (w, h);
        self.pixels.clear();
        self.pixels.resize(w as usize * h as usize, 0);
    }

    /// The preview size, `(width, height)`.
    pub fn size(&self) -> (usize, usize) {
        (self.size.0 as usize, self.size.1 as usize)
    }

    /// The frame size it is planned for.
    pub fn source_size(&self) -> (u32, u32) {
        self.src
    }

    /// The last rendered frame, row-major `0x00RRGGBB`.
    pub fn pixels(&self) -> &[u32] {
        &self.pixels
    }

    /// Converts and scales `frame` into the buffer (re-planning first if its size changed) and
    /// returns the pixels.
    pub fn render(&mut self, frame: &Frame) -> &[u32] {
        self.resize(frame.width, frame.height);
        match frame.format {
            PixelFormat::Rgb => self.fill::<false>(frame),
            PixelFormat::Bgr => self.fill::<true>(frame),
        }
        &self.pixels
    }

    fn fill<const BGR: bool>(&mut self, frame: &Frame) {
        if frame.width == 0 || frame.height == 0 {
            self.pixels.fill(0);
            return;
        }
        let data = &frame.data[..];
        if self.size == self.src {
            // Same size: 4 pixels from 3 little-endian words at a time, then the rest.
            let mut out = self.pixels.chunks_exact_mut(4);
            let mut px = data.chunks_exact(12);
            for (d, b) in (&mut out).zip(&mut px) {
                let (d, b): (&mut [u32; 4], &[u8; 12]) = (d.try_into().unwrap(), b.try_into().unwrap());
                let w = |k: usize| u32::from_le_bytes([b[k], b[k + 1], b[k + 2], b[k + 3]]);
                let (w0, w1, w2) = (w(0), w(4), w(8));
                let v = [w0, w0 >> 24 | w1 << 8, w1 >> 16 | w2 << 16, w2 >> 8];
                for (d, v) in d.iter_mut().zip(v) {
                    *d = if BGR { v & 0x00ff_ffff } else { (v & 0xff) << 16 | (v & 0xff00) | (v >> 16 & 0xff) };
                }
            }
            for (i, d) in out.into_remainder().iter_mut().enumerate() {
                *d = pack::<BGR>(px.remainder(), 3 * i);
            }
            return;
        }
        let (w, stride) = (self.size.0 as usize, frame.stride());
        for (out, &y) in self.pixels.chunks_exact_mut(w).zip(&self.rows) {
            let row = &data[y * stride..];
            for (d, &x) in out.iter_mut().zip(&self.cols) {
                *d = pack::<BGR>(row, x);
            }
        }
    }
}

/// The pixel whose 3 bytes start at `data[i]` as `0x00RRGGBB`. Reads the 3 bytes with one 4-byte
/// load wherever a 4th byte exists (every pixel but the frame's last): little-endian, that load is
/// already `0x??RRGGBB` for BGR and the byte-reversed pixel for RGB.
#[inline(always)]
fn pack<const BGR: bool>(data: &[u8], i: usize) -> u32 {
    let v = match data.get(i..i + 4) {
        Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        None => u32::from_le_bytes([data[i], data[i + 1], data[i + 2], 0]),
    };
    if BGR {
        v & 0x00ff_ffff
    } else {
        v.swap_bytes() >> 8
    }
}

#[cfg(feature = "preview")]
pub use window::WindowSink;

#[cfg(feature = "preview")]
mod window {
    use std::ffi::OsString;

    use anyhow::{anyhow, Context, Result};
    use minifb::{Key, ScaleMode, Window, WindowOptions};

    use super::{check_display, PreviewBuffer, CLOSED, MAX_SIZE};
    use crate::pipeline::frame::{Frame, PixelFormat};
    use crate::pipeline::sink::Sink;

    /// Shows frames in a desktop window (X11, macOS or Windows, through `minifb`).
    ///
    /// Not `Send`: it stays on the thread that created it (macOS wants windows on the main thread).
    pub struct WindowSink {
        window: Window,
        title: String,
        view: PreviewBuffer,
        shown: u64,
    }

    impl WindowSink {
        /// Opens a window titled `title` for `width × height` frames, using the process
        /// environment to find the display.
        pub fn open(title: &str, width: u32, height: u32) -> Result<WindowSink> {
            WindowSink::open_with_env(title, width, height, &|k| std::env::var_os(k))
        }

        /// [`WindowSink::open`] with the display variables read from `env` (the no-display check
        /// only; the window system itself reads the process environment).
        pub fn open_with_env(
            title: &str,
            width: u32,
            height: u32,
            env: &dyn Fn(&str) -> Option<OsString>,
        ) -> Result<WindowSink> {
            check_display(env)?;
            let view = PreviewBuffer::new(width, height, MAX_SIZE);
            let (w, h) = view.size();
            let opts = WindowOptions { resize: true, scale_mode: ScaleMode::AspectRatioStretch, ..Default::default() };
            let mut window = Window::new(title, w, h, opts).map_err(|e| {
                let on = env("DISPLAY").map(|v| format!(" on DISPLAY={}", v.to_string_lossy())).unwrap_or_default();
                anyhow!(
                    "window: cannot open the preview window{on} ({}); use --sink null or --sink video:PATH",
                    e.to_string().trim()
                )
            })?;
            // Never sleep inside the pipeline: the preview shows frames as fast as they come.
            window.set_target_fps(0);
            Ok(WindowSink { window, title: title.to_string(), view, shown: 0 })
        }

        /// Frames shown so far.
        pub fn shown(&self) -> u64 {
            self.shown
        }

        /// The pixels of the last frame shown (`0x00RRGGBB`, preview size).
        pub fn pixels(&self) -> &[u32] {
            self.view.pixels()
        }

        /// The preview size, `(width, height)`.
        pub fn size(&self) -> (usize, usize) {
            self.view.size()
        }
    }

    impl Sink for WindowSink {
        fn describe(&self) -> String {
            let (w, h) = self.view.size();
            let (sw, sh) = self.view.source_size();
            let scaled =
                if (w, h) == (sw as usize, sh as usize) { String::new() } else { format!(", {sw}×{sh} scaled") };
            format!("preview window '{}' {w}×{h}{scaled} (close it or press Esc to stop)", self.title)
        }
        fn format(&self) -> Option<PixelFormat> {
            // Converts either order itself, as part of drawing.
            None
        }
        fn write(&mut self, frame: &Frame, _index: u64) -> Result<()> {
            if !self.window.is_open() {
                return Ok(());
            }
            self.view.render(frame);
            let (w, h) = self.view.size();
            self.window.update_with_buffer(self.view.pixels(), w, h).context("window: cannot draw the preview")?;
            self.shown += 1;
            Ok(())
        }
        fn stop_requested(&self) -> Option<String> {
            if !self.window.is_open() {
                Some(CLOSED.to_string())
            } else if self.window.is_key_down(Key::Escape) {
                Some(format!("{CLOSED} (Esc)"))
            } else {
                None
            }
        }
    }
}
