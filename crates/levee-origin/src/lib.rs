//! The built-in demo origin: a tiny web application to put behind the edge.
//!
//! It serves what a campaign site has: a home page, static assets, a slow
//! search, a login form and an API of (fake) personal records. It is also
//! instrumented: it counts what reached it and keeps the last request heads it
//! saw, so tests and drills can assert what the edge let through.
//!
//! It is not hardened and is not meant to face the Internet; it runs behind
//! the edge on loopback. Routes:
//! - `GET /` home page (HTML, links `/static/app.css`), `GET /static/app.css`
//! - `GET /search?q=` (waits 150 ms: an expensive page)
//! - `POST /login` (form `user=..&password=..`; password `demo` succeeds)
//! - `GET /api/members/{id}` fake personal records, ids 1..=1000
//! - `GET /healthz`; `GET /echo` (the request head and body back, for tests);
//!   `GET /big?bytes=N`; `GET /delay?ms=N`; `GET /ws` (WebSocket echo)
//! - `GET /__origin/stats`: the counters as JSON, for drills (not counted)

use levee_http::chunked;
use levee_http::h1::{self, Framing, HeadLimits, Parsed};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The origin's own counters as JSON, read directly (never through the edge).
pub const STATS_PATH: &[u8] = b"/__origin/stats";

/// What reached the origin.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
    pub connections: AtomicU64,
    recent: Mutex<VecDeque<String>>,
}

const RECENT: usize = 4096;

impl Stats {
    /// The last request heads (request line and fields, as text), oldest first.
    pub fn recent_heads(&self) -> Vec<String> {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Forget what was seen.
    pub fn clear(&self) {
        self.recent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        self.requests.store(0, Ordering::Relaxed);
        self.max_in_flight.store(0, Ordering::Relaxed);
    }

    fn record(&self, head: &[u8]) {
        let mut r = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if r.len() == RECENT {
            r.pop_front();
        }
        r.push_back(String::from_utf8_lossy(head).into_owned());
    }
}

/// Bind `addr` and serve in the background; returns the bound address.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<(SocketAddr, Arc<Stats>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let stats = Arc::new(Stats::default());
    tokio::spawn(serve(listener, Arc::clone(&stats)));
    Ok((local, stats))
}

/// Serve connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, stats: Arc<Stats>) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                let _ = sock.set_nodelay(true);
                stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(conn(sock, Arc::clone(&stats)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

struct InFlight<'a>(&'a Stats);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn conn(mut sock: TcpStream, stats: Arc<Stats>) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let limits = HeadLimits {
        max_head_bytes: 64 * 1024,
        max_headers: 200,
        max_uri_bytes: 32 * 1024,
    };
    loop {
        let head = loop {
            match h1::parse_request(&buf, &limits) {
                Ok(Parsed::Complete(h)) => break h,
                Ok(Parsed::Partial) => {}
                Err(_) => {
                    let _ = sock
                        .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await;
                    return;
                }
            }
            let mut tmp = [0u8; 8192];
            match sock.read(&mut tmp).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
        };
        if &buf[head.path.clone()] == STATS_PATH {
            // The drill's view of the origin: not counted as traffic.
            let body = format!(
                "{{\"requests\":{},\"in_flight\":{},\"max_in_flight\":{},\"connections\":{}}}\n",
                stats.requests.load(Ordering::Relaxed),
                stats.in_flight.load(Ordering::Relaxed),
                stats.max_in_flight.load(Ordering::Relaxed),
                stats.connections.load(Ordering::Relaxed)
            );
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
            let _ = sock.write_all(resp.as_bytes()).await;
            return;
        }
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let now = stats.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        stats.max_in_flight.fetch_max(now, Ordering::Relaxed);
        let _guard = InFlight(&stats);
        stats.record(&buf[..head.len]);
        let raw_head = buf[..head.len].to_vec();
        buf.drain(..head.len);
        // Read the body.
        let body = match head.framing {
            Framing::None | Framing::Close => Vec::new(),
            Framing::Length(n) => {
                let n = n as usize;
                while buf.len() < n {
                    let mut tmp = [0u8; 8192];
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&tmp[..k]),
                    }
                }
                buf.drain(..n).collect()
            }
            Framing::Chunked => loop {
                match chunked::decode_all(&buf) {
                    Ok(Some((data, used))) => {
                        buf.drain(..used);
                        break data;
                    }
                    Ok(None) => {
                        let mut tmp = [0u8; 8192];
                        match sock.read(&mut tmp).await {
                            Ok(0) | Err(_) => return,
                            Ok(k) => buf.extend_from_slice(&tmp[..k]),
                        }
                    }
                    Err(_) => return,
                }
            },
        };
        let method = String::from_utf8_lossy(&raw_head[head.method.clone()]).into_owned();
        let target = String::from_utf8_lossy(&raw_head[head.path.clone()]).into_owned();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        if head.websocket && path == "/ws" {
            let key = head.headers.iter().find_map(|(n, v)| {
                raw_head[n.clone()]
                    .eq_ignore_ascii_case(b"sec-websocket-key")
                    .then(|| raw_head[v.clone()].to_vec())
            });
            let accept = websocket_accept(&key.unwrap_or_default());
            let resp = format!("HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {accept}\r\n\r\n");
            if sock.write_all(resp.as_bytes()).await.is_err() {
                return;
            }
            if !buf.is_empty() && sock.write_all(&buf).await.is_err() {
                return;
            }
            let (mut r, mut w) = sock.split();
            let _ = tokio::io::copy(&mut r, &mut w).await;
            return;
        }
        if path == "/big" && method == "GET" {
            // Streamed from a static buffer: large responses cost no memory.
            let n: u64 = query_param(query, "bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1 << 20);
            let resp_head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\ncontent-length: {n}\r\n\r\n");
            if sock.write_all(resp_head.as_bytes()).await.is_err() {
                return;
            }
            static CHUNK: [u8; 65536] = [b'x'; 65536];
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK.len() as u64) as usize;
                if sock.write_all(&CHUNK[..k]).await.is_err() {
                    return;
                }
                left -= k as u64;
            }
            if !head.keep_alive {
                return;
            }
            continue;
        }
        let (status, ctype, body_out): (u16, &str, Vec<u8>) =
            route(&method, path, query, &raw_head, &body).await;
        // Public pages may be cached by the edge; personal data never.
        let cc = match (status, path) {
            (200, "/" | "/static/app.css") => "public, max-age=60",
            (200, "/search") => "public, max-age=10",
            _ => "no-store",
        };
        let head_out = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\ncache-control: {cc}\r\n{}\r\n",
            h1::reason_phrase(status),
            body_out.len(),
            if head.keep_alive { "" } else { "connection: close\r\n" }
        );
        let mut out = head_out.into_bytes();
        if method != "HEAD" {
            out.extend_from_slice(&body_out);
        }
        if sock.write_all(&out).await.is_err() || !head.keep_alive {
            return;
        }
    }
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    })
}

const HOME: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Levee demo site</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><h1>Levee demo site</h1>
<p>This page is served by the demo origin through the Levee edge.</p>
<form action="/search"><input name="q" aria-label="Search"><button>Search</button></form>
<p><a href="/api/members/1">Member 1 (fake personal data)</a></p>
</body></html>
"#;

const CSS: &str = "body{font-family:sans-serif;max-width:40em;margin:2em auto}h1{color:#0b5}\n";

async fn route(
    method: &str,
    path: &str,
    query: &str,
    head: &[u8],
    body: &[u8],
) -> (u16, &'static str, Vec<u8>) {
    const HTML: &str = "text/html; charset=utf-8";
    const JSON: &str = "application/json";
    const TEXT: &str = "text/plain; charset=utf-8";
    match (method, path) {
        ("GET" | "HEAD", "/") => (200, HTML, HOME.as_bytes().to_vec()),
        ("GET" | "HEAD", "/static/app.css") => (200, "text/css", CSS.as_bytes().to_vec()),
        ("GET" | "HEAD", "/healthz") => (200, TEXT, b"ok\n".to_vec()),
        ("GET" | "HEAD", "/search") => {
            tokio::time::sleep(Duration::from_millis(150)).await;
            let q = query_param(query, "q").unwrap_or("");
            let q: String = q
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .take(64)
                .collect();
            (
                200,
                HTML,
                format!("<!doctype html><title>Search</title><p>No results for {q}.</p>\n")
                    .into_bytes(),
            )
        }
        ("POST", "/login") => {
            let form = String::from_utf8_lossy(body);
            if query_param(&form, "password") == Some("demo") {
                (200, JSON, b"{\"ok\":true}\n".to_vec())
            } else {
                (401, JSON, b"{\"ok\":false}\n".to_vec())
            }
        }
        ("GET" | "HEAD", "/echo") | ("POST", "/echo") => {
            let mut out = head.to_vec();
            out.extend_from_slice(body);
            (200, TEXT, out)
        }
        ("GET" | "HEAD", "/big") => {
            let n: usize = query_param(query, "bytes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(1 << 20);
            (
                200,
                "application/octet-stream",
                vec![b'x'; n.min(256 << 20)],
            )
        }
        ("GET" | "HEAD", "/delay") => {
            let ms: u64 = query_param(query, "ms")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
            (200, TEXT, b"done\n".to_vec())
        }
        ("GET" | "HEAD", p) if p.starts_with("/api/members/") => {
            match p["/api/members/".len()..].parse::<u32>() {
                Ok(id) if (1..=1000).contains(&id) => (200, JSON, member(id).into_bytes()),
                _ => (404, JSON, b"{\"error\":\"no such member\"}\n".to_vec()),
            }
        }
        _ => (404, TEXT, b"not found\n".to_vec()),
    }
}

/// A deterministic fake member record.
fn member(id: u32) -> String {
    const FIRST: [&str; 8] = [
        "Ada", "Brian", "Chloé", "Dara", "Emeka", "Fatima", "Gustav", "Hana",
    ];
    const LAST: [&str; 8] = [
        "Okafor", "Nguyen", "Schmidt", "García", "Kowalski", "Haddad", "Murphy", "Sato",
    ];
    let f = FIRST[(id % 8) as usize];
    let l = LAST[((id / 8) % 8) as usize];
    serde_json::json!({
        "id": id,
        "name": format!("{f} {l}"),
        "email": format!("{}.{}{}@example.org", f.to_lowercase(), l.to_lowercase(), id),
        "phone": format!("+44 7700 9{:05}", id),
        "postcode": format!("ZZ{} {}AA", id % 99, id % 9),
        "fake": true
    })
    .to_string()
        + "\n"
}

fn websocket_accept(key: &[u8]) -> String {
    let mut h = sha1_smol::Sha1::new();
    h.update(key);
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64(&h.digest().bytes())
}

fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_accept_matches_rfc6455_example() {
        assert_eq!(
            websocket_accept(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn members_are_fake_and_stable() {
        assert_eq!(member(7), member(7));
        assert!(member(7).contains("\"fake\":true"));
    }
}
