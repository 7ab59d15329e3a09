//! Tracking between detections: faces keep an id from one detection to the next (matched by box
//! overlap), and on frames without detection each face is extrapolated at the velocity of its last
//! two detections.

use super::detect::{iou, Face};

/// A face with a stable id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tracked {
    pub id: u64,
    pub face: Face,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    seq: u64,
    face: Face,
    /// The detection before, for velocity.
    prev: Option<(u64, Face)>,
}

/// Boxes overlapping at least this much are the same face.
pub const MATCH_IOU: f32 = 0.3;

/// The tracks of the current detections.
#[derive(Debug, Default)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
}

fn lerp_face(a: &Face, b: &Face, t: f32) -> Face {
    let l = |x: f32, y: f32| x + (y - x) * t;
    let mut f = *b;
    for i in 0..4 {
        f.bbox[i] = l(a.bbox[i], b.bbox[i]);
    }
    for (k, (p, q)) in f.kps.iter_mut().zip(a.kps.iter().zip(&b.kps)) {
        *k = [l(p[0], q[0]), l(p[1], q[1])];
    }
    f
}

impl Tracker {
    /// A tracker with no faces.
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// True when no face is tracked.
    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Takes the detections of frame `seq`: each continues the best-overlapping track, or starts one.
    pub fn update(&mut self, seq: u64, faces: &[Face]) -> Vec<Tracked> {
        let mut old = std::mem::take(&mut self.tracks);
        let mut out = Vec::with_capacity(faces.len());
        for f in faces {
            let best = old
                .iter()
                .enumerate()
                .map(|(i, t)| (i, iou(&t.face.bbox, &f.bbox)))
                .filter(|&(_, o)| o >= MATCH_IOU)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            let track = match best {
                Some((i, _)) => {
                    let t = old.swap_remove(i);
                    Track { id: t.id, seq, face: *f, prev: Some((t.seq, t.face)) }
                }
                None => {
                    self.next_id += 1;
                    Track { id: self.next_id, seq, face: *f, prev: None }
                }
            };
            out.push(Tracked { id: track.id, face: *f });
            self.tracks.push(track);
        }
        out
    }

    /// The faces predicted for frame `seq` (after the last detection), at constant velocity.
    pub fn predict(&self, seq: u64) -> Vec<Tracked> {
        self.tracks
            .iter()
            .map(|t| {
                let face = match t.prev {
                    Some((pseq, pface)) if t.seq > pseq && seq > t.seq => {
                        let ahead = (seq - pseq) as f32 / (t.seq - pseq) as f32;
                        lerp_face(&pface, &t.face, ahead)
                    }
                    _ => t.face,
                };
                Tracked { id: t.id, face }
            })
            .collect()
    }
}
