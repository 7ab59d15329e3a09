//! A bounded frame queue between two threads. When full, a live source's push drops the oldest
//! frame (a camera must never wait, and the freshest frame is the one worth showing); an offline
//! source's push waits instead, so files and synthetic scenes are processed frame by frame.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What a full queue does on push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Drop the oldest queued item (counted).
    DropOldest,
    /// Wait for room.
    Block,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    dropped: u64,
}

/// A bounded multi-producer, multi-consumer queue.
pub struct BoundedQueue<T> {
    capacity: usize,
    policy: WhenFull,
    state: Mutex<State<T>>,
    changed: Condvar,
}

impl<T> BoundedQueue<T> {
    /// A queue holding at most `capacity` (≥ 1) items.
    pub fn new(capacity: usize, policy: WhenFull) -> BoundedQueue<T> {
        BoundedQueue {
            capacity: capacity.max(1),
            policy,
            state: Mutex::new(State { items: VecDeque::new(), closed: false, dropped: 0 }),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an item; returns false (dropping it) when the queue is closed.
    pub fn push(&self, item: T) -> bool {
        let mut s = self.lock();
        loop {
            if s.closed {
                return false;
            }
            if s.items.len() < self.capacity {
                break;
            }
            match self.policy {
                WhenFull::DropOldest => {
                    s.items.pop_front();
                    s.dropped += 1;
                }
                WhenFull::Block => s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner()),
            }
        }
        s.items.push_back(item);
        self.changed.notify_all();
        true
    }

    /// Takes the oldest item, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.lock();
        loop {
            if let Some(item) = s.items.pop_front() {
                self.changed.notify_all();
                return Some(item);
            }
            if s.closed {
                return None;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Like [`BoundedQueue::pop`] but gives up after `timeout` (returns `None`).
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let mut s = self.lock();
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(item) = s.items.pop_front() {
                self.changed.notify_all();
                return Some(item);
            }
            let now = std::time::Instant::now();
            if s.closed || now >= deadline {
                return None;
            }
            s = self.changed.wait_timeout(s, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Closes the queue: pushes fail, pops drain what is left, then return `None`.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Items dropped so far.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
