//! Assets: the two photos built into the binary, and the project's own test assets.
//!
//! The product needs only what is built in: `assets/media/astronaut.png` (one real face) and
//! `assets/media/coffee.png` (no face), both public domain / CC0 (see `assets/media/README.md`).
//! `shared/` beside the checkout holds what may not be redistributed (the real SCRFD weights); only
//! the project's tests read it, through [`shared_file`], and `FACEPERF_SHARED` overrides the search.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use image::RgbImage;

/// `assets/media/astronaut.png`: 512×512 RGB, one frontal face (NASA portrait, public domain).
pub const ASTRONAUT_PNG: &[u8] = include_bytes!("../../assets/media/astronaut.png");
/// `assets/media/coffee.png`: 600×400 RGB, a cup of coffee and no face (CC0).
pub const COFFEE_PNG: &[u8] = include_bytes!("../../assets/media/coffee.png");

/// What the built-in astronaut photo is called in results and messages.
pub const ASTRONAUT_NAME: &str = "built-in assets/media/astronaut.png";
/// What the built-in coffee photo is called in results and messages.
pub const COFFEE_NAME: &str = "built-in assets/media/coffee.png";

/// The face in the astronaut photo as SCRFD-500M finds it (box `[x1, y1, x2, y2]` and the five
/// keypoints: eyes, nose tip, mouth corners), in photo pixels. Measured once with the real weights
/// (`tests/pipeline_detect.rs` checks it against them when the test assets are present); the
/// synthetic source places its faces from it, so it knows where every face is.
pub const ASTRONAUT_FACE_BOX: [f32; 4] = [180.0, 60.0, 272.0, 180.0];
/// See [`ASTRONAUT_FACE_BOX`].
pub const ASTRONAUT_FACE_KPS: [[f32; 2]; 5] =
    [[204.0, 101.0], [247.0, 104.0], [224.0, 129.0], [202.0, 140.0], [246.0, 142.0]];

/// The built-in file at `rel` (relative to `assets/`, e.g. `media/astronaut.png`), if there is one.
pub fn builtin(rel: &str) -> Option<&'static [u8]> {
    match rel {
        "media/astronaut.png" => Some(ASTRONAUT_PNG),
        "media/coffee.png" => Some(COFFEE_PNG),
        _ => None,
    }
}

fn decode(cell: &'static OnceLock<RgbImage>, png: &'static [u8], name: &str) -> Result<RgbImage> {
    if let Some(img) = cell.get() {
        return Ok(img.clone());
    }
    let img = image::load_from_memory_with_format(png, image::ImageFormat::Png)
        .with_context(|| format!("{name}: cannot decode the built-in photo"))?
        .to_rgb8();
    Ok(cell.get_or_init(|| img).clone())
}

/// The built-in astronaut photo, decoded (once per process).
pub fn astronaut() -> Result<RgbImage> {
    static CELL: OnceLock<RgbImage> = OnceLock::new();
    decode(&CELL, ASTRONAUT_PNG, ASTRONAUT_NAME)
}

/// The built-in coffee photo (no face), decoded (once per process).
pub fn coffee() -> Result<RgbImage> {
    static CELL: OnceLock<RgbImage> = OnceLock::new();
    decode(&CELL, COFFEE_PNG, COFFEE_NAME)
}

/// The photo at `path`, or the built-in astronaut when `path` is `None`; with the name to report.
pub fn photo_or_astronaut(path: Option<&Path>) -> Result<(RgbImage, String)> {
    match path {
        Some(p) => Ok((
            image::open(p).with_context(|| format!("{}: cannot decode the image", p.display()))?.to_rgb8(),
            p.display().to_string(),
        )),
        None => Ok((astronaut()?, ASTRONAUT_NAME.to_string())),
    }
}

const MARKER: &str = "models/real/scrfd_500m_bnkps.onnx";

/// Environment variable that makes a missing `shared/` an error for the tests that need it (CI).
pub const REQUIRE_SHARED_ENV: &str = "FACEPERF_REQUIRE_SHARED";

/// The project's test-asset folder: `$FACEPERF_SHARED`, else the first `shared/` beside an ancestor
/// of the crate root or the current folder that holds the real SCRFD. Never needed by a command.
pub fn shared_dir() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("FACEPERF_SHARED") {
        let p = PathBuf::from(p);
        if p.join(MARKER).is_file() {
            return Ok(p);
        }
        bail!("FACEPERF_SHARED={} does not contain {MARKER}", p.display());
    }
    let mut starts = vec![PathBuf::from(env!("CARGO_MANIFEST_DIR"))];
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    for s in &starts {
        for a in s.ancestors() {
            for candidate in [a.join("shared"), a.join("../shared")] {
                if candidate.join(MARKER).is_file() {
                    return Ok(candidate.canonicalize().unwrap_or(candidate));
                }
            }
        }
    }
    bail!(
        "the project's test assets were not found: expected a shared/ folder with {MARKER} beside the checkout, \
         or set FACEPERF_SHARED (they are for faceperf's own tests; no command needs them)"
    )
}

/// A file inside the project's test-asset folder, e.g. `models/real/scrfd_500m_bnkps.onnx`.
pub fn shared_file(rel: impl AsRef<Path>) -> Result<PathBuf> {
    let p = shared_dir()?.join(rel.as_ref());
    if !p.exists() {
        bail!("test asset {} is missing", p.display());
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_photos_decode() {
        let a = astronaut().unwrap();
        assert_eq!(a.dimensions(), (512, 512));
        let c = coffee().unwrap();
        assert_eq!(c.dimensions(), (600, 400));
        // The face box lies inside the photo and the keypoints inside the box.
        let [x1, y1, x2, y2] = ASTRONAUT_FACE_BOX;
        assert!(x1 >= 0.0 && y1 >= 0.0 && x2 <= 512.0 && y2 <= 512.0);
        for [x, y] in ASTRONAUT_FACE_KPS {
            assert!(x > x1 && x < x2 && y > y1 && y < y2);
        }
    }

    #[test]
    fn photo_or_astronaut_names_what_it_used() {
        let (img, name) = photo_or_astronaut(None).unwrap();
        assert_eq!((img.width(), name.as_str()), (512, ASTRONAUT_NAME));
        let err = photo_or_astronaut(Some(Path::new("/nonexistent/face.png"))).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/face.png"));
    }

    #[test]
    #[ignore = "needs the project's test assets (../shared); ci/test.sh runs it when they are there"]
    fn needs_shared_finds_the_real_detector() {
        let p = shared_file(MARKER).unwrap();
        assert!(p.is_file());
    }
}
