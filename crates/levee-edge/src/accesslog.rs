//! The JSON-lines access log, written off the request path.
//!
//! Requests hand a [`LogLine`] to a bounded channel and never wait: when the
//! channel is full the line is counted in `levee_access_log_dropped_total`
//! and the request goes on. A writer thread formats and writes the lines and
//! flushes at least once a second.

use crate::metrics::Metrics;
use crate::Verdict;
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

/// One request, as logged.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Unix time in milliseconds when the request head was complete.
    pub ts_ms: u64,
    pub client: IpAddr,
    pub site: String,
    pub method: String,
    pub path: String,
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
    pub request_id: String,
}

/// The sending side; cheap to share.
#[derive(Debug, Clone)]
pub struct AccessLog {
    tx: Option<SyncSender<LogLine>>,
    metrics: Arc<Metrics>,
}

/// Longest path kept in a log line.
const MAX_PATH: usize = 2048;

impl AccessLog {
    /// Start the writer for `path` (`-` stdout, `off` nothing, else a file, appended).
    pub fn start(path: &str, buffer: usize, metrics: Arc<Metrics>) -> std::io::Result<Self> {
        if path == "off" {
            return Ok(AccessLog { tx: None, metrics });
        }
        let out: Box<dyn Write + Send> = if path == "-" {
            Box::new(std::io::stdout())
        } else {
            Box::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?)
        };
        let (tx, rx) = mpsc::sync_channel::<LogLine>(buffer.max(1));
        let m = Arc::clone(&metrics);
        std::thread::Builder::new()
            .name("levee-access-log".into())
            .spawn(move || {
                let mut w = std::io::BufWriter::with_capacity(64 * 1024, out);
                let mut last_flush = std::time::Instant::now();
                loop {
                    if last_flush.elapsed() >= Duration::from_secs(1) {
                        let _ = w.flush();
                        last_flush = std::time::Instant::now();
                    }
                    match rx.recv_timeout(Duration::from_secs(1)) {
                        Ok(mut line) => {
                            if line.path.len() > MAX_PATH {
                                let mut cut = MAX_PATH;
                                while !line.path.is_char_boundary(cut) {
                                    cut -= 1;
                                }
                                line.path.truncate(cut);
                            }
                            if serde_json::to_writer(&mut w, &line).is_ok() && w.write_all(b"\n").is_ok() {
                                m.access_log_written.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(RecvTimeoutError::Timeout) => {
                            let _ = w.flush();
                        }
                        Err(RecvTimeoutError::Disconnected) => {
                            let _ = w.flush();
                            return;
                        }
                    }
                }
            })?;
        Ok(AccessLog { tx: Some(tx), metrics })
    }

    /// Queue a line; never blocks.
    pub fn log(&self, line: LogLine) {
        if let Some(tx) = &self.tx {
            match tx.try_send(line) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.metrics.access_log_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }
}
