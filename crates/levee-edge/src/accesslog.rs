//! The JSON-lines access log, written off the request path.
//!
//! Requests hand a [`LogLine`] to a bounded buffer and never wait: when the
//! buffer is full the line is counted in `levee_access_log_dropped_total`
//! and the request goes on. A writer thread collects the buffer every 50 ms,
//! formats and writes the lines, and flushes.

use crate::metrics::Metrics;
use crate::Verdict;
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// One request, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine<'a> {
    /// Unix time in milliseconds when the request head was complete.
    pub ts_ms: u64,
    pub client: IpAddr,
    pub site: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_us: u64,
    /// Time until the origin's response head, when an origin was asked.
    pub origin_us: Option<u64>,
    pub verdict: Verdict,
    /// Why the verdict (a defense label), empty for ordinary requests.
    pub reason: &'static str,
    /// `TLSv1.3`, `TLSv1.2`, or null for cleartext.
    pub tls: Option<&'static str>,
    /// `http/1.1`, `http/1.0`, `h2` or `h2c`.
    pub proto: &'static str,
    pub request_id: &'a str,
}

/// The sending side; cheap to share.
#[derive(Debug, Clone)]
pub struct AccessLog {
    inner: Option<Arc<Buffer>>,
    metrics: Arc<Metrics>,
}

/// Formatted lines waiting for the writer. Lines are formatted on the
/// request path straight into this buffer (no allocation, about a
/// microsecond); the writer swaps the whole buffer out on a timer, so the
/// request path never wakes a thread or waits for I/O.
#[derive(Debug)]
struct Buffer {
    pending: Mutex<Pending>,
    cap_lines: usize,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    lines: u64,
}

/// Longest path kept in a log line.
const MAX_PATH: usize = 2048;
/// How often the writer collects lines.
const TICK: Duration = Duration::from_millis(20);

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

impl AccessLog {
    /// Start the writer for `path` (`-` stdout, `off` nothing, else a file, appended).
    pub fn start(path: &str, buffer: usize, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        if path == "off" {
            return Ok(AccessLog {
                inner: None,
                metrics,
            });
        }
        let mut out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )
        };
        let buf = Arc::new(Buffer {
            pending: Mutex::new(Pending::default()),
            cap_lines: buffer.max(1),
        });
        let weak = Arc::downgrade(&buf);
        let m = Arc::clone(&metrics);
        std::thread::Builder::new()
            .name("levee-access-log".into())
            .spawn(move || {
                let mut batch = Pending::default();
                loop {
                    std::thread::sleep(TICK);
                    let alive = match weak.upgrade() {
                        Some(b) => {
                            std::mem::swap(
                                &mut *b.pending.lock().unwrap_or_else(PoisonError::into_inner),
                                &mut batch,
                            );
                            true
                        }
                        None => false,
                    };
                    if !batch.bytes.is_empty() && out.write_all(&batch.bytes).is_ok() {
                        m.access_log_written
                            .fetch_add(batch.lines, Ordering::Relaxed);
                    }
                    let _ = out.flush();
                    batch.bytes.clear();
                    batch.lines = 0;
                    if !alive {
                        return;
                    }
                }
            })?;
        Ok(AccessLog {
            inner: Some(buf),
            metrics,
        })
    }

    /// Format and queue a line; never blocks on I/O. A full buffer drops the
    /// line and counts it.
    pub fn log(&self, line: &LogLine<'_>) {
        let Some(b) = &self.inner else { return };
        let mut line = line.clone();
        line.path = truncate(line.path, MAX_PATH);
        let mut p = b.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if p.lines as usize >= b.cap_lines {
            drop(p);
            self.metrics
                .access_log_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let before = p.bytes.len();
        if serde_json::to_writer(&mut p.bytes, &line).is_ok() {
            p.bytes.push(b'\n');
            p.lines += 1;
        } else {
            p.bytes.truncate(before);
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }
}
