//! The window preview sink: parsing, its errors with and without the `preview` feature and
//! without a display, the RGB/BGR → 0RGB conversion and downscale (exact pixels), a sink asking
//! the scheduler to stop, and — built with `--features preview` and when `Xvfb` is on PATH — real
//! windows on a virtual X server: pixels read back from the server, Esc and the window's close
//! button (WM_DELETE_WINDOW) ending a `faceperf live` run cleanly.

use std::ffi::OsString;
use std::process::Command;

use anyhow::Result;
use faceperf::models::{synth, Role, Scale};
use faceperf::pipeline::detect::Detector;
use faceperf::pipeline::frame::{Frame, PixelFormat};
use faceperf::pipeline::preview::{check_display, fit, PreviewBuffer, CLOSED, MAX_SIZE};
use faceperf::pipeline::scheduler::{self, Settings, Stages};
use faceperf::pipeline::sink::{Sink, SinkSpec, DEFAULT_TITLE};
use faceperf::pipeline::source::{self, SourceSpec, SyntheticConfig};
use faceperf::pipeline::stages::{Recogniser, Swapper};
use faceperf::runtime::{self, SessionConfig};
use faceperf::util::assets::shared_file;

const BIN: &str = env!("CARGO_BIN_EXE_faceperf");

fn window(title: &str) -> SinkSpec {
    SinkSpec::Window { title: title.into() }
}

#[test]
fn window_sink_parses_in_every_build() {
    assert_eq!(SinkSpec::parse("window").unwrap(), window(DEFAULT_TITLE));
    assert_eq!(SinkSpec::parse("window:").unwrap(), window(DEFAULT_TITLE));
    assert_eq!(SinkSpec::parse("window:Cam 1: left").unwrap(), window("Cam 1: left"));
    let e = SinkSpec::parse("windows").unwrap_err().to_string();
    assert!(e.contains("window[:TITLE]") && e.contains("video:PATH"), "{e}");
}

#[cfg(not(feature = "preview"))]
#[test]
fn without_the_feature_the_window_sink_says_how_to_get_it() {
    let want = "window: this faceperf was built without the preview window (rebuild with `cargo build --release \
                --features preview`); use --sink null, images:DIR, ppm:DIR or video:PATH";
    use faceperf::pipeline::sink;
    let e = sink::open(&window("x"), 64, 48, 30.0).err().unwrap().to_string();
    assert_eq!(e, want);
    assert_eq!(sink::check(&window("x")).unwrap_err().to_string(), want);
}

/// The environment with only `vars` set.
fn env_of(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
    move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(v))
}

#[cfg(all(unix, not(target_os = "macos")))]
#[test]
fn no_display_is_a_one_line_error_naming_the_cause_and_the_alternatives() {
    let want = "window: no display to show the preview on (DISPLAY is unset: a server, a container or an SSH \
                session without X forwarding?); use --sink null or --sink video:PATH";
    for vars in [&[][..], &[("DISPLAY", "")][..]] {
        assert_eq!(check_display(&env_of(vars)).unwrap_err().to_string(), want);
    }
    assert_eq!(
        check_display(&env_of(&[("WAYLAND_DISPLAY", "wayland-0")])).unwrap_err().to_string(),
        "window: the preview is an X11 window and DISPLAY is unset (a Wayland session without XWayland?); use \
         --sink null or --sink video:PATH"
    );
    assert!(check_display(&env_of(&[("DISPLAY", ":3")])).is_ok());
    assert!(check_display(&env_of(&[("DISPLAY", ":0"), ("WAYLAND_DISPLAY", "wayland-0")])).is_ok());
    // The window sink checks before it touches the window system.
    #[cfg(feature = "preview")]
    {
        let e = faceperf::pipeline::preview::WindowSink::open_with_env("t", 64, 48, &env_of(&[])).err().unwrap();
        assert_eq!(e.to_string(), want);
    }
}

/// `faceperf live --sink window` without a display (or without the feature) fails at once, before
/// any model loads, with one error line and no panic.
#[cfg(all(unix, not(target_os = "macos")))]
#[test]
fn live_without_a_display_fails_before_loading_models() {
    let o = Command::new(BIN)
        .args(["live", "--sink", "window", "--models", "/nonexistent/models", "--frames", "2"])
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && !e.contains("panicked"), "{e}");
    let errors: Vec<&str> = e.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 1, "{e}");
    let why = if cfg!(feature = "preview") { "error: window: no display" } else { "error: window: this faceperf" };
    assert!(errors[0].starts_with(why) && errors[0].contains("--sink null"), "{e}");
}

// ---- conversion and downscale ----

/// A frame whose pixel (x, y) is (r, g, b) = (x, y, 7·x + y) mod 256, stored in `format` order.
fn pattern(w: u32, h: u32, format: PixelFormat) -> Frame {
    let mut f = Frame::new(w, h, format);
    for y in 0..h {
        for x in 0..w {
            let rgb = [x as u8, y as u8, (7 * x + y) as u8];
            let i = ((y * w + x) * 3) as usize;
            let px = match format {
                PixelFormat::Rgb => rgb,
                PixelFormat::Bgr => [rgb[2], rgb[1], rgb[0]],
            };
            f.data[i..i + 3].copy_from_slice(&px);
        }
    }
    f
}

/// The `0RGB` value `pattern` has at (x, y).
fn pattern_0rgb(x: u32, y: u32) -> u32 {
    (x % 256) << 16 | (y % 256) << 8 | ((7 * x + y) % 256)
}

#[test]
fn preview_size_fits_the_box_keeping_the_aspect() {
    assert_eq!(MAX_SIZE, (1280, 720));
    assert_eq!(fit(1920, 1080, MAX_SIZE), (1280, 720));
    assert_eq!(fit(3840, 2160, MAX_SIZE), (1280, 720));
    assert_eq!(fit(1080, 1920, MAX_SIZE), (405, 720));
    assert_eq!(fit(2000, 100, MAX_SIZE), (1280, 64));
    assert_eq!(fit(640, 480, MAX_SIZE), (640, 480));
    assert_eq!(fit(1280, 720, MAX_SIZE), (1280, 720));
    assert_eq!(fit(100_000, 1, MAX_SIZE), (1280, 1));
}

#[test]
fn rgb_and_bgr_frames_convert_to_0rgb_exactly() {
    // Same size: every pixel, both channel orders, one small frame by hand.
    let f = Frame::from_raw(2, 1, PixelFormat::Rgb, vec![0x12, 0x34, 0x56, 0xff, 0x00, 0x80]).unwrap();
    let mut b = PreviewBuffer::new(2, 1, MAX_SIZE);
    assert_eq!(b.render(&f), &[0x0012_3456, 0x00ff_0080]);
    let f = Frame::from_raw(2, 1, PixelFormat::Bgr, vec![0x12, 0x34, 0x56, 0xff, 0x00, 0x80]).unwrap();
    assert_eq!(b.render(&f), &[0x0056_3412, 0x0080_00ff]);
    for format in [PixelFormat::Rgb, PixelFormat::Bgr] {
        let f = pattern(7, 5, format);
        let mut b = PreviewBuffer::new(7, 5, MAX_SIZE);
        assert_eq!(b.size(), (7, 5));
        let want: Vec<u32> = (0..5).flat_map(|y| (0..7).map(move |x| pattern_0rgb(x, y))).collect();
        assert_eq!(b.render(&f), &want[..], "{format:?}");
    }
}

#[test]
fn downscale_samples_the_nearest_source_pixel_by_centre() {
    // 7×5 into 3×2: columns ⌊(2i+1)·7/6⌋ = 1, 3, 5; rows ⌊(2j+1)·5/4⌋ = 1, 3.
    for format in [PixelFormat::Rgb, PixelFormat::Bgr] {
        let mut b = PreviewBuffer::new(7, 5, (3, 3));
        assert_eq!(b.size(), (3, 2));
        let want: Vec<u32> = [1, 3].iter().flat_map(|&y| [1, 3, 5].map(|x| pattern_0rgb(x, y))).collect();
        assert_eq!(b.render(&pattern(7, 5, format)), &want[..], "{format:?}");
    }
    // 1080p into 1280×720 (factor 1.5): preview (i, j) shows source (⌊(2i+1)·3/4⌋, ⌊(2j+1)·3/4⌋).
    let mut b = PreviewBuffer::new(1920, 1080, MAX_SIZE);
    let px = b.render(&pattern(1920, 1080, PixelFormat::Bgr)).to_vec();
    assert_eq!(px.len(), 1280 * 720);
    for (i, j) in [(0u32, 0u32), (1, 1), (100, 50), (1279, 719), (853, 411)] {
        let (x, y) = ((2 * i + 1) * 3 / 4, (2 * j + 1) * 3 / 4);
        assert_eq!(px[(j * 1280 + i) as usize], pattern_0rgb(x, y), "preview ({i}, {j}) ← source ({x}, {y})");
    }
    // A frame of another size re-plans the buffer.
    assert_eq!(b.render(&pattern(4, 2, PixelFormat::Rgb)).len(), 8);
    assert_eq!((b.size(), b.source_size()), ((4, 2), (4, 2)));
    // An empty frame shows one black pixel instead of failing.
    assert_eq!(b.render(&Frame::new(0, 0, PixelFormat::Rgb)), &[0]);
}

// ---- the scheduler stops when the sink asks ----

/// Takes frames and asks to stop after `after` of them.
struct StopAfter {
    after: u64,
    taken: u64,
}

impl Sink for StopAfter {
    fn describe(&self) -> String {
        "stops after a few frames".into()
    }
    fn format(&self) -> Option<PixelFormat> {
        None
    }
    fn write(&mut self, _frame: &Frame, _index: u64) -> Result<()> {
        self.taken += 1;
        Ok(())
    }
    fn stop_requested(&self) -> Option<String> {
        (self.taken >= self.after).then(|| CLOSED.to_string())
    }
}

#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_a_sink_asking_to_stop_ends_the_run_cleanly() {
    let rt = runtime::init(None).unwrap();
    let cpu = SessionConfig::cpu(1);
    let mut det =
        Detector::load(rt, &shared_file("models/real/scrfd_500m_bnkps.onnx").unwrap(), &cpu, false, None).unwrap();
    let synthetic = SyntheticConfig { width: 320, height: 240, ..SyntheticConfig::default() };
    let frame = source::Synthetic::new(synthetic.clone()).unwrap().render(0);
    let face = det.detect(&frame).unwrap().faces.remove(0);
    let mut rec =
        Recogniser::load(rt, &synth::replica_path(Role::Recognizer, Scale::Tiny).unwrap(), &cpu, false).unwrap();
    let embedding = rec.embed(&frame, &face).unwrap();
    let swapper = Swapper::load(rt, &synth::replica_path(Role::Swapper, Scale::Tiny).unwrap(), &cpu, false).unwrap();
    let latent = swapper.latent(&embedding).unwrap();
    let mut stages = Stages { swapper, enhancer: None, landmarker: None, latent };
    let src = source::open(&SourceSpec::Synthetic(synthetic), &Default::default()).unwrap();
    let settings = Settings {
        detection_interval: 2,
        enhancer_interval: 0,
        many_faces: false,
        max_faces: 1,
        mouth_mask: false,
        frames: Some(50),
        seconds: None,
        queue_depth: 2,
        realtime: false,
        adaptive: None,
        source_faces: false,
    };
    let mut sink = StopAfter { after: 3, taken: 0 };
    let report = scheduler::run(&mut det, &mut stages, src, &mut sink, &settings).unwrap();
    assert_eq!((report.frames, sink.taken), (3, 3), "no frame is written after the request");
    assert_eq!(report.stopped_by.as_deref(), Some(CLOSED));
    assert!(report.stopped_by_user);
    assert!(report.table().contains(&format!("stopped early: {CLOSED}")));
}

// ---- real windows on a virtual X server ----

#[cfg(all(feature = "preview", unix, not(target_os = "macos")))]
mod xvfb {
    use std::ffi::CString;
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use x11_dl::xlib;

    /// An `Xvfb` server on a display it picked itself (`-displayfd`), killed on drop.
    pub struct Xvfb {
        child: Child,
        pub display: String,
    }

    impl Xvfb {
        /// Starts one with a `w × h` screen; `None` (with the reason printed) when Xvfb is not on PATH.
        pub fn start(w: u32, h: u32) -> Option<Xvfb> {
            let found =
                std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("Xvfb").is_file()));
            if !found {
                eprintln!("skipped: Xvfb is not on PATH (apt-get install xvfb to run the window tests)");
                return None;
            }
            let mut child = Command::new("Xvfb")
                .args(["-displayfd", "1", "-nolisten", "tcp", "-screen", "0", &format!("{w}x{h}x24")])
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("Xvfb starts");
            // It writes the display number once it accepts connections.
            let mut line = String::new();
            BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
            let n: u32 = line.trim().parse().unwrap_or_else(|_| panic!("Xvfb printed no display number: {line:?}"));
            Some(Xvfb { child, display: format!(":{n}") })
        }
    }

    impl Drop for Xvfb {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A client connection used to look at and poke the windows of another client.
    pub struct Client {
        x: xlib::Xlib,
        d: *mut xlib::Display,
    }

    impl Client {
        /// Connects to `display` (`None`: `$DISPLAY`).
        pub fn open(display: Option<&str>) -> Client {
            let x = xlib::Xlib::open().expect("libX11 loads");
            let name = display.map(|s| CString::new(s).unwrap());
            let d = unsafe {
                // A window that goes away while it is inspected is no reason to exit the process
                // (Xlib's default error handler).
                (x.XSetErrorHandler)(Some(ignore_errors));
                (x.XOpenDisplay)(name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()))
            };
            assert!(!d.is_null(), "cannot connect to the X server {display:?}");
            Client { x, d }
        }

        /// The top-level windows that are mapped, with their titles.
        pub fn windows(&self) -> Vec<(xlib::Window, String)> {
            unsafe {
                (self.x.XSync)(self.d, 0);
                let root = (self.x.XDefaultRootWindow)(self.d);
                let (mut r, mut p, mut children, mut n) = (0, 0, std::ptr::null_mut(), 0u32);
                (self.x.XQueryTree)(self.d, root, &mut r, &mut p, &mut children, &mut n);
                let all = if children.is_null() {
                    vec![]
                } else {
                    let v = std::slice::from_raw_parts(children, n as usize).to_vec();
                    (self.x.XFree)(children.cast());
                    v
                };
                all.into_iter()
                    .filter(|&w| {
                        let mut a: xlib::XWindowAttributes = std::mem::zeroed();
                        (self.x.XGetWindowAttributes)(self.d, w, &mut a) != 0 && a.map_state == xlib::IsViewable
                    })
                    .map(|w| {
                        let mut name = std::ptr::null_mut();
                        let mut title = String::new();
                        if (self.x.XFetchName)(self.d, w, &mut name) != 0 && !name.is_null() {
                            title = std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned();
                            (self.x.XFree)(name.cast());
                        }
                        (w, title)
                    })
                    .collect()
            }
        }

        /// Waits up to `secs` for a mapped top-level window titled `title`.
        pub fn wait_window(&self, title: &str, secs: u64) -> xlib::Window {
            let t = Instant::now();
            loop {
                if let Some((w, _)) = self.windows().into_iter().find(|(_, n)| n == title) {
                    return w;
                }
                assert!(t.elapsed() < Duration::from_secs(secs), "no window '{title}' appeared in {secs} s");
                std::thread::sleep(Duration::from_millis(20));
            }
        }

        /// The window's pixels as the server has them (`0x00RRGGBB`), `w × h` from its top left.
        pub fn pixels(&self, win: xlib::Window, w: u32, h: u32) -> Vec<u32> {
            unsafe {
                (self.x.XSync)(self.d, 0);
                let img = (self.x.XGetImage)(self.d, win, 0, 0, w, h, !0, xlib::ZPixmap);
                assert!(!img.is_null());
                let mut out = Vec::with_capacity((w * h) as usize);
                for y in 0..h as i32 {
                    for x in 0..w as i32 {
                        out.push(((self.x.XGetPixel)(img, x, y) & 0xff_ffff) as u32);
                    }
                }
                (self.x.XDestroyImage)(img);
                out
            }
        }

        /// What the window manager sends when the user clicks the close button.
        pub fn close(&self, win: xlib::Window) {
            unsafe {
                let atom = |n: &[u8]| (self.x.XInternAtom)(self.d, n.as_ptr().cast(), 0);
                let mut ev: xlib::XEvent = std::mem::zeroed();
                ev.client_message = xlib::XClientMessageEvent {
                    type_: xlib::ClientMessage,
                    serial: 0,
                    send_event: 1,
                    display: self.d,
                    window: win,
                    message_type: atom(b"WM_PROTOCOLS\0"),
                    format: 32,
                    data: xlib::ClientMessageData::new(),
                };
                ev.client_message.data.set_long(0, atom(b"WM_DELETE_WINDOW\0") as i64);
                (self.x.XSendEvent)(self.d, win, 0, 0, &mut ev);
                (self.x.XSync)(self.d, 0);
            }
        }

        /// A press of the Esc key in the window.
        pub fn press_escape(&self, win: xlib::Window) {
            unsafe {
                let mut ev: xlib::XEvent = std::mem::zeroed();
                ev.key = xlib::XKeyEvent {
                    type_: xlib::KeyPress,
                    serial: 0,
                    send_event: 1,
                    display: self.d,
                    window: win,
                    root: (self.x.XDefaultRootWindow)(self.d),
                    subwindow: 0,
                    time: 0,
                    x: 1,
                    y: 1,
                    x_root: 1,
                    y_root: 1,
                    state: 0,
                    keycode: (self.x.XKeysymToKeycode)(self.d, 0xff1b /* XK_Escape */) as u32,
                    same_screen: 1,
                };
                (self.x.XSendEvent)(self.d, win, 0, 0, &mut ev);
                (self.x.XSync)(self.d, 0);
            }
        }
    }

    unsafe extern "C" fn ignore_errors(_: *mut xlib::Display, _: *mut xlib::XErrorEvent) -> std::ffi::c_int {
        0
    }

    impl Drop for Client {
        fn drop(&mut self) {
            unsafe { (self.x.XCloseDisplay)(self.d) };
        }
    }
}

/// Set for the child process of `window_sink_shows_frames_under_xvfb`.
#[cfg(all(feature = "preview", unix, not(target_os = "macos")))]
const CHILD: &str = "FACEPERF_PREVIEW_TEST_CHILD";

/// Runs `xvfb_child_window_sink` in a child process whose `DISPLAY` is a fresh Xvfb (the window
/// system reads the process environment, which tests running in parallel must not change).
#[cfg(all(feature = "preview", unix, not(target_os = "macos")))]
#[test]
fn window_sink_shows_frames_under_xvfb() {
    let Some(x) = xvfb::Xvfb::start(1280, 1024) else { return };
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "xvfb_child_window_sink", "--ignored", "--nocapture", "--test-threads=1"])
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .env(CHILD, "1")
        .output()
        .unwrap();
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && out.contains("1 passed"), "{out}\n{err}");
    eprintln!("{err}");
}

#[cfg(all(feature = "preview", unix, not(target_os = "macos")))]
#[test]
#[ignore = "run by window_sink_shows_frames_under_xvfb, in a process with DISPLAY set"]
fn xvfb_child_window_sink() {
    use std::time::{Duration, Instant};

    use faceperf::pipeline::preview::WindowSink;
    if std::env::var_os(CHILD).is_none() {
        eprintln!("skipped: run by window_sink_shows_frames_under_xvfb");
        return;
    }
    let mut sink = WindowSink::open("faceperf preview test", 1920, 1080).unwrap();
    assert_eq!(sink.size(), (1280, 720));
    let d = sink.describe();
    assert!(d.contains("'faceperf preview test' 1280×720, 1920×1080 scaled"), "{d}");
    assert!(sink.format().is_none(), "either channel order is drawn without a convert stage");
    assert_eq!(sink.stop_requested(), None);

    // Frames are drawn: counted, converted and scaled, and the X server holds the same pixels.
    let frame = pattern(1920, 1080, PixelFormat::Bgr);
    for i in 0..3 {
        sink.write(&frame, i).unwrap();
    }
    assert_eq!(sink.shown(), 3);
    assert_eq!(sink.pixels()[50 * 1280 + 100], pattern_0rgb(150, 75));
    assert_eq!(sink.pixels()[50 * 1280 + 100], 0x96_4b_65, "(150, 75, 7·150 + 75 mod 256)");
    let x = xvfb::Client::open(None);
    let win = x.wait_window("faceperf preview test", 10);
    let t = Instant::now();
    let mut on_screen = x.pixels(win, 1280, 720);
    while on_screen != sink.pixels() && t.elapsed() < Duration::from_secs(5) {
        sink.write(&frame, 3).unwrap();
        on_screen = x.pixels(win, 1280, 720);
    }
    let differ = on_screen.iter().zip(sink.pixels()).filter(|(a, b)| a != b).count();
    assert_eq!(differ, 0, "pixels on the X server differ from the preview buffer");
    eprintln!("window {win:#x}: {} frames shown, 1280×720 pixels read back from the X server", sink.shown());

    // A frame of another size and order re-plans the buffer; the window keeps its size.
    sink.write(&pattern(640, 480, PixelFormat::Rgb), 5).unwrap();
    assert_eq!((sink.size(), sink.pixels()[479 * 640 + 639]), ((640, 480), pattern_0rgb(639, 479)));

    // Esc asks to stop, and so does the close button.
    let wait_stop = |sink: &mut WindowSink| {
        let t = Instant::now();
        while sink.stop_requested().is_none() && t.elapsed() < Duration::from_secs(5) {
            sink.write(&frame, 6).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        sink.stop_requested()
    };
    x.press_escape(win);
    assert_eq!(wait_stop(&mut sink).as_deref(), Some(format!("{CLOSED} (Esc)").as_str()));
    drop(sink);
    let mut sink = WindowSink::open("second", 320, 240).unwrap();
    sink.write(&pattern(320, 240, PixelFormat::Rgb), 0).unwrap();
    let second = x.wait_window("second", 10);
    x.close(second);
    assert_eq!(wait_stop(&mut sink).as_deref(), Some(CLOSED));
    let shown = sink.shown();
    sink.write(&frame, 7).unwrap();
    assert_eq!(sink.shown(), shown, "a closed window draws nothing");
}

/// `faceperf live --sink window` under Xvfb: the window shows the run, and closing it ends the run
/// with success and the report saying so.
#[cfg(all(feature = "preview", unix, not(target_os = "macos")))]
#[test]
#[ignore = "needs the real SCRFD weights from ../shared; ci/test.sh runs it when they are there"]
fn needs_shared_closing_the_preview_window_ends_a_live_run_cleanly() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let Some(x) = xvfb::Xvfb::start(1280, 1024) else { return };
    let models = synth::ensure_replicas(Scale::Tiny).unwrap();
    let scrfd = shared_file("models/real/scrfd_500m_bnkps.onnx").unwrap();
    let mut child = Command::new(BIN)
        .args(["--json", "live", "--size", "320x240", "--sink", "window:live test", "--seconds", "120"])
        .arg("--models")
        .arg(&models)
        .arg("--detector")
        .arg(&scrfd)
        .env("DISPLAY", &x.display)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = xvfb::Client::open(Some(&x.display));
    let win = client.wait_window("live test", 120);
    // Let a few frames through, then click the close button.
    std::thread::sleep(Duration::from_millis(1500));
    client.close(win);
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the run did not end after its window was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && !err.contains("panicked"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("a JSON report");
    assert_eq!(v["stopped_by"], CLOSED);
    assert_eq!(v["stopped_by_user"], true);
    assert!(v["frames"].as_u64().unwrap() >= 1);
    let notes = v["notes"].to_string();
    assert!(notes.contains("sink: preview window 'live test' 320×240"), "{notes}");
}
