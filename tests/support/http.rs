//! A loopback HTTP/1.1 server for the download tests (no test touches the internet): GET with an
//! optional `Range: bytes=N-`, one thread per connection, `Connection: close` on every answer.
//! Routes can drop the connection part-way, ignore ranges, redirect, or send slowly.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request the server saw: path and the start of the requested range.
pub type Logged = (String, Option<u64>);

/// A running server; it lives until the test process ends.
pub struct Server {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base: String,
    log: Arc<Mutex<Vec<Logged>>>,
}

/// What the server answers on one path.
#[derive(Debug, Default)]
pub struct Route {
    /// The file served.
    pub body: Vec<u8>,
    /// The next `drops` responses send only `cut` body bytes, then close the connection.
    pub drops: usize,
    /// Body bytes sent by a dropped response.
    pub cut: usize,
    /// Answer every request with the whole body (a server without Range support).
    pub ignore_range: bool,
    /// Answer with a 302 to this path instead.
    pub redirect: Option<String>,
    /// Pause after each 16 KiB chunk of the body (so that a kill lands mid-transfer).
    pub pause: Duration,
}

/// A route and how many of its drops are left.
struct Served {
    route: Route,
    drops_left: AtomicUsize,
}

impl Server {
    /// Serves each `(path, body)` in full, at once.
    pub fn start(routes: Vec<(&str, Vec<u8>)>) -> Server {
        Server::start_with(routes.into_iter().map(|(p, b)| (p, Route { body: b, ..Default::default() })).collect())
    }

    /// Serves the given routes; other paths get a 404.
    pub fn start_with(routes: Vec<(&str, Route)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let routes: Arc<HashMap<String, Served>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), Served { drops_left: AtomicUsize::new(r.drops), route: r }))
                .collect(),
        );
        let log2 = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (routes, log) = (routes.clone(), log2.clone());
                std::thread::spawn(move || handle(stream, &routes, &log));
            }
        });
        Server { base, log }
    }

    /// The URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

fn handle(mut stream: TcpStream, routes: &HashMap<String, Served>, log: &Mutex<Vec<Logged>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut range = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("range: bytes=") {
            range = v.trim().trim_end_matches('-').parse::<u64>().ok();
        }
    }
    log.lock().unwrap().push((path.clone(), range));
    let Some(served) = routes.get(&path) else {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
        return;
    };
    let route = &served.route;
    if let Some(to) = &route.redirect {
        let head = format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        let _ = stream.write_all(head.as_bytes());
        return;
    }
    let range = range.filter(|_| !route.ignore_range);
    let len = route.body.len();
    let start = (range.unwrap_or(0) as usize).min(len);
    let head = if range.is_some() {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{len}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            len.saturating_sub(1),
            len - start
        )
    } else {
        format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    if stream.write_all(head.as_bytes()).is_err() {
        return;
    }
    let mut body = &route.body[start..];
    let dropped = served.drops_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |d| d.checked_sub(1)).is_ok();
    if dropped {
        body = &body[..route.cut.min(body.len())];
    }
    for chunk in body.chunks(16 * 1024) {
        if stream.write_all(chunk).is_err() {
            return; // the client went away (or was killed)
        }
        std::thread::sleep(route.pause);
    }
    let _ = stream.flush();
    if dropped {
        let _ = stream.shutdown(Shutdown::Both);
    }
}
