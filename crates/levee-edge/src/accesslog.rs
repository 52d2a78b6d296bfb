//! The JSON-lines access log, written off the request path.
//!
//! Requests hand a [`LogLine`] to a bounded buffer and never wait: when the
//! buffer is full the line is counted in `levee_access_log_dropped_total`
//! and the request goes on. A writer thread collects the buffer every 5 ms (short writes, so it never holds a core for long),
//! formats and writes the lines, and flushes.

use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use levee_privacy::Pseudonymizer;
use serde::Serialize;
use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// What the edge decided about a request. A refusal is a verdict, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Block,
    Challenge,
    Shed,
}

/// One request, as logged.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct LogLine<'a> {
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
    /// JA4 fingerprint of the TLS ClientHello.
    pub ja4: Option<&'a str>,
    /// The client's passive HTTP/2 fingerprint (Akamai form), for HTTP/2.
    pub h2fp: Option<&'a str>,
    /// `http/1.1`, `http/1.0`, `h2` or `h2c`.
    pub proto: &'static str,
    pub request_id: &'a str,
}

impl LogLine<'_> {
    /// Append this line as one JSON object (no newline). Hand-written: it is
    /// on the request path, and equal to what `serde_json` writes (tested).
    #[cfg(test)]
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        self.write_json_as(out, None);
    }

    /// As `write_json`, with the client written as `pseudonym` when given.
    pub(crate) fn write_json_as(&self, out: &mut Vec<u8>, pseudonym: Option<&str>) {
        out.extend_from_slice(b"{\"ts_ms\":");
        num(out, self.ts_ms);
        out.extend_from_slice(b",\"client\":\"");
        match pseudonym {
            // Pseudonyms are hex, dots, colons, '/' and '~': nothing to escape.
            Some(p) => out.extend_from_slice(p.as_bytes()),
            None => crate::proxy::push_ip(out, self.client),
        }
        out.extend_from_slice(b"\",\"site\":");
        string(out, self.site);
        out.extend_from_slice(b",\"method\":");
        string(out, self.method);
        out.extend_from_slice(b",\"path\":");
        string(out, self.path);
        out.extend_from_slice(b",\"status\":");
        num(out, u64::from(self.status));
        out.extend_from_slice(b",\"bytes_in\":");
        num(out, self.bytes_in);
        out.extend_from_slice(b",\"bytes_out\":");
        num(out, self.bytes_out);
        out.extend_from_slice(b",\"duration_us\":");
        num(out, self.duration_us);
        out.extend_from_slice(b",\"origin_us\":");
        match self.origin_us {
            Some(v) => num(out, v),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"verdict\":\"");
        out.extend_from_slice(match self.verdict {
            Verdict::Allow => b"allow".as_slice(),
            Verdict::Block => b"block",
            Verdict::Challenge => b"challenge",
            Verdict::Shed => b"shed",
        });
        out.extend_from_slice(b"\",\"reason\":");
        string(out, self.reason);
        out.extend_from_slice(b",\"tls\":");
        opt_string(out, self.tls);
        out.extend_from_slice(b",\"ja4\":");
        opt_string(out, self.ja4);
        out.extend_from_slice(b",\"h2fp\":");
        opt_string(out, self.h2fp);
        out.extend_from_slice(b",\"proto\":");
        string(out, self.proto);
        out.extend_from_slice(b",\"request_id\":");
        string(out, self.request_id);
        out.push(b'}');
    }
}

/// A JSON string, or `null`.
fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(t) => string(out, t),
        None => out.extend_from_slice(b"null"),
    }
}

fn num(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// A JSON string: quotes, backslashes and control characters escaped.
fn string(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&b[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 15)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// The sending side; cheap to share.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    inner: Option<Arc<Buffer>>,
    metrics: Arc<Metrics>,
    /// With `pseudonymize`: the current period's key (swapped by the writer).
    pseudo: Option<Arc<ArcSwap<Keyed>>>,
}

/// A period's pseudonymizer and its generation (for the per-thread cache).
#[derive(Debug)]
struct Keyed {
    generation: u64,
    p: Pseudonymizer,
}

/// Pseudonyms remembered per worker thread (most requests come from a
/// client seen a moment ago); cleared when the key changes or it is full.
const PSEUDONYM_CACHE: usize = 4096;

/// Why the access log cannot start.
#[derive(Debug)]
pub(crate) enum StartError {
    Io(std::io::Error),
    Keys(crate::keys::KeyError),
}

/// Formatted lines waiting for the writer. Lines are formatted on the
/// request path straight into this buffer (no allocation, about a
/// microsecond); the writer swaps the whole buffer out on a timer, so the
/// request path never wakes a thread or waits for I/O.
#[derive(Debug)]
struct Buffer {
    pending: Mutex<Pending>,
    cap_lines: usize,
    /// The pending bytes' bound: lines beyond it are dropped and counted,
    /// however long each line is.
    cap_bytes: usize,
    /// Set by a reload: the writer reopens the file (after log rotation).
    reopen: std::sync::atomic::AtomicBool,
    /// Lines are also written with raw addresses (`raw_path`).
    raw: bool,
    /// Erasures asked through the admin API, run by the writer.
    jobs: Mutex<Vec<EraseJob>>,
}

/// An erasure asked of the writer: it alone may rewrite the live logs.
#[derive(Debug)]
struct EraseJob {
    who: crate::Person,
    reason: String,
    reply: tokio::sync::oneshot::Sender<Result<crate::Erased, String>>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    /// The same lines with raw addresses, for `raw_path`.
    raw: Vec<u8>,
    lines: u64,
}

/// One file the writer appends to.
struct Out {
    path: String,
    w: Box<dyn Write + Send>,
    /// A handle on the same open file, for its lock.
    lock: Option<std::fs::File>,
}

impl Out {
    /// Open (append) and lock: the lock is held while the file is written,
    /// so that `levee retention erase` sees the live log has a writer.
    fn open(path: &str) -> std::io::Result<Out> {
        let o = Out::open_unlocked(path)?;
        o.lock();
        Ok(o)
    }

    fn open_unlocked(path: &str) -> std::io::Result<Out> {
        let (w, lock): (Box<dyn Write + Send>, _) = if path == "-" {
            (Box::new(std::io::stdout()), None)
        } else {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            // The same open file (a lock on one is a lock on both).
            let lock = f.try_clone().ok();
            (Box::new(f), lock)
        };
        Ok(Out {
            path: path.to_string(),
            w,
            lock,
        })
    }

    fn lock(&self) {
        if let Some(f) = &self.lock {
            if let Err(std::fs::TryLockError::WouldBlock) = f.try_lock() {
                eprintln!(
                    "levee: the access log {} is locked by another process (another edge writing to it?)",
                    self.path
                );
            }
        }
    }

    /// Reopen after rotation; on failure keep writing to the old file. The
    /// old file is closed (and its lock released) before the new one is
    /// locked: the same file reopened is locked again, not refused.
    fn reopen(&mut self) {
        if self.path == "-" {
            return;
        }
        let _ = self.w.flush();
        match Out::open_unlocked(&self.path) {
            Ok(o) => {
                *self = o;
                self.lock();
            }
            Err(e) => eprintln!(
                "levee: cannot reopen the access log {}: {e}; still writing to the old file",
                self.path
            ),
        }
    }
}

/// Longest path kept in a log line.
const MAX_PATH: usize = 2048;
/// Longest method kept (httparse accepts a method as long as the head).
const MAX_METHOD: usize = 32;
/// The byte budget of the pending buffer, per line of `access_log.buffer`.
const BYTES_PER_LINE: usize = 512;
/// A buffer grown past this by a spike is given back once written.
const KEEP_BYTES: usize = 4 << 20;
/// How often the writer collects lines.
const TICK: Duration = Duration::from_millis(5);

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
    pub(crate) fn start(
        cfg: &levee_config::AccessLog,
        retention: &levee_config::Retention,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StartError> {
        let (path, buffer) = (cfg.path.as_str(), cfg.buffer as usize);
        if path == "off" {
            return Ok(AccessLog {
                inner: None,
                metrics,
                pseudo: None,
            });
        }
        // The ledger (for a file log), then with `pseudonymize` the keys:
        // no key, no log (never raw instead).
        let mut ledger = if path == "-" {
            None
        } else {
            Some(
                crate::ledger::Ledger::open(crate::ledger::path_of(cfg))
                    .map_err(|e| StartError::Io(std::io::Error::other(e.to_string())))?,
            )
        };
        let (mut keys, pseudo) = if let (true, Some(l)) = (cfg.pseudonymize, ledger.as_mut()) {
            let (ks, p) = crate::keys::KeyStore::open(cfg, l, crate::clock::unix_ms() / 1000)
                .map_err(StartError::Keys)?;
            (
                Some(ks),
                Some(Arc::new(ArcSwap::from_pointee(Keyed { generation: 1, p }))),
            )
        } else {
            (None, None)
        };
        let pseudo_w = pseudo.clone();
        // Retention: the rotated copies of each log, by its tier.
        let raw_path = cfg.raw_path.as_deref().filter(|_| cfg.pseudonymize);
        let tiers = if retention.enabled {
            crate::retention::tiers_of(cfg, retention)
        } else {
            Vec::new()
        };
        let every = retention.every.as_duration();
        let mut next_sweep = std::time::Instant::now();
        let mut out = Out::open(path).map_err(StartError::Io)?;
        let mut raw_out = raw_path
            .map(Out::open)
            .transpose()
            .map_err(StartError::Io)?;
        let buf = Arc::new(Buffer {
            pending: Mutex::new(Pending::default()),
            cap_lines: buffer.max(1),
            cap_bytes: buffer.max(1).saturating_mul(BYTES_PER_LINE).max(1 << 20),
            reopen: std::sync::atomic::AtomicBool::new(false),
            raw: raw_out.is_some(),
            jobs: Mutex::new(Vec::new()),
        });
        let (a_cfg, r_cfg) = (cfg.clone(), retention.clone());
        let weak = Arc::downgrade(&buf);
        let m = Arc::clone(&metrics);
        std::thread::Builder::new()
            .name("levee-access-log".into())
            .spawn(move || {
                let mut batch = Pending::default();
                loop {
                    std::thread::sleep(TICK);
                    if let (Some(l), false) = (ledger.as_mut(), tiers.is_empty()) {
                        if std::time::Instant::now() >= next_sweep {
                            for t in &tiers {
                                crate::retention::sweep(t, l, crate::clock::unix_ms());
                            }
                            next_sweep = std::time::Instant::now() + every;
                        }
                    }
                    if let (Some(ks), Some(p), Some(l)) =
                        (keys.as_mut(), pseudo_w.as_ref(), ledger.as_mut())
                    {
                        if let Some(next) = ks.tick(l, crate::clock::unix_ms() / 1000) {
                            let generation = p.load().generation + 1;
                            p.store(Arc::new(Keyed {
                                generation,
                                p: next,
                            }));
                        }
                    }
                    let alive = match weak.upgrade() {
                        Some(b) => {
                            std::mem::swap(
                                &mut *b.pending.lock().unwrap_or_else(PoisonError::into_inner),
                                &mut batch,
                            );
                            if b.reopen.swap(false, Ordering::Relaxed) {
                                out.reopen();
                                if let Some(r) = raw_out.as_mut() {
                                    r.reopen();
                                }
                            }
                            true
                        }
                        None => false,
                    };
                    if !batch.bytes.is_empty() && out.w.write_all(&batch.bytes).is_ok() {
                        m.access_log_written
                            .fetch_add(batch.lines, Ordering::Relaxed);
                    }
                    let _ = out.w.flush();
                    if let Some(r) = raw_out.as_mut() {
                        if !batch.raw.is_empty() {
                            if let Err(e) = r.w.write_all(&batch.raw) {
                                eprintln!("levee: cannot write the raw access log {}: {e}", r.path);
                            }
                        }
                        let _ = r.w.flush();
                    }
                    let jobs = weak.upgrade().map(|b| {
                        std::mem::take(&mut *b.jobs.lock().unwrap_or_else(PoisonError::into_inner))
                    });
                    for job in jobs.into_iter().flatten() {
                        // Between two writes: the files are whole. Reopened
                        // before (a rotation since is picked up) and after
                        // (the live log was replaced).
                        out.reopen();
                        if let Some(r) = raw_out.as_mut() {
                            r.reopen();
                        }
                        let done = match ledger.as_mut() {
                            Some(l) => crate::retention::erase::erase(
                                &a_cfg,
                                &r_cfg,
                                &job.who,
                                &job.reason,
                                l,
                                crate::clock::unix_ms(),
                                true,
                            )
                            .map_err(|e| e.to_string()),
                            None => Err("the access log is not a file".to_string()),
                        };
                        out.reopen();
                        if let Some(r) = raw_out.as_mut() {
                            r.reopen();
                        }
                        let _ = job.reply.send(done);
                    }
                    for v in [&mut batch.bytes, &mut batch.raw] {
                        v.clear();
                        if v.capacity() > KEEP_BYTES {
                            *v = Vec::new();
                        }
                    }
                    batch.lines = 0;
                    if !alive {
                        return;
                    }
                }
            })
            .map_err(StartError::Io)?;
        Ok(AccessLog {
            inner: Some(buf),
            metrics,
            pseudo,
        })
    }

    /// Format and queue a line; never blocks on I/O. A full buffer drops the
    /// line and counts it.
    pub(crate) fn log(&self, line: &LogLine<'_>) {
        let Some(b) = &self.inner else { return };
        let mut line = line.clone();
        line.path = truncate(line.path, MAX_PATH);
        line.method = truncate(line.method, MAX_METHOD);
        // Formatted outside the lock (into this thread's own buffer), so
        // that workers only contend for a copy.
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
            static PSEUDONYMS: std::cell::RefCell<(u64, std::collections::HashMap<IpAddr, String>)> =
                std::cell::RefCell::new((0, std::collections::HashMap::new()));
        }
        SCRATCH.with(|cell| {
            let mut text = cell.borrow_mut();
            text.clear();
            match &self.pseudo {
                Some(p) => PSEUDONYMS.with(|c| {
                    let mut c = c.borrow_mut();
                    let k = p.load();
                    if c.0 != k.generation || c.1.len() >= PSEUDONYM_CACHE {
                        c.0 = k.generation;
                        c.1.clear();
                    }
                    let name =
                        c.1.entry(line.client)
                            .or_insert_with(|| k.p.ip(line.client));
                    line.write_json_as(&mut text, Some(name));
                }),
                None => line.write_json_as(&mut text, None),
            }
            text.push(b'\n');
            // The same line with the raw address, for `raw_path`.
            let split = text.len();
            if b.raw {
                line.write_json_as(&mut text, None);
                text.push(b'\n');
            }
            let mut p = b.pending.lock().unwrap_or_else(PoisonError::into_inner);
            if p.lines as usize >= b.cap_lines
                || p.bytes.len() + p.raw.len() + text.len() > b.cap_bytes
            {
                drop(p);
                self.metrics
                    .access_log_dropped
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
            p.bytes.extend_from_slice(&text[..split]);
            p.raw.extend_from_slice(&text[split..]);
            p.lines += 1;
        });
    }

    /// Ask the writer to erase `who` from every log; the answer comes when
    /// it is done. `None` when the log is off.
    pub(crate) fn erase(
        &self,
        who: crate::Person,
        reason: String,
    ) -> Option<tokio::sync::oneshot::Receiver<Result<crate::Erased, String>>> {
        let b = self.inner.as_ref()?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        b.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(EraseJob { who, reason, reply });
        Some(rx)
    }

    /// Reopen the log file at the next write (after it was rotated).
    pub(crate) fn reopen(&self) {
        if let Some(b) = &self.inner {
            b.reopen.store(true, Ordering::Relaxed);
        }
    }

    /// A client as this log writes it: its pseudonym under the current key
    /// when the log is pseudonymised, else its address.
    pub(crate) fn client_name(&self, ip: IpAddr) -> String {
        match &self.pseudo {
            Some(p) => p.load().p.ip(ip),
            None => ip.to_canonical().to_string(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.inner.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_written_json_equals_serde() {
        let paths = [
            "/a?b=c",
            "/q\"uote\\back",
            "/ctl\u{1}\u{1f}\n\t",
            "/ünï",
            "",
        ];
        for (i, p) in paths.iter().enumerate() {
            let line = LogLine {
                ts_ms: 1_795_929_925_542 + i as u64,
                client: if i % 2 == 0 {
                    "192.0.2.1".parse().unwrap()
                } else {
                    "2001:db8::1".parse().unwrap()
                },
                site: "demo",
                method: "GET",
                path: p,
                status: 200,
                bytes_in: 0,
                bytes_out: u64::MAX,
                duration_us: 311,
                origin_us: if i % 2 == 0 { Some(216) } else { None },
                verdict: [
                    Verdict::Allow,
                    Verdict::Block,
                    Verdict::Challenge,
                    Verdict::Shed,
                ][i % 4],
                reason: "bare_lf",
                tls: if i % 2 == 0 { None } else { Some("TLSv1.3") },
                ja4: if i % 2 == 0 {
                    None
                } else {
                    Some("t13d1516h2_8daaf6152771_e5627efa2ab1")
                },
                h2fp: (i % 2 == 1).then_some("1:65536;2:0|15663105|0|m,a,s,p"),
                proto: "h2",
                request_id: "abc",
            };
            let mut mine = Vec::new();
            line.write_json(&mut mine);
            let serde = serde_json::to_vec(&line).unwrap();
            assert_eq!(
                String::from_utf8(mine).unwrap(),
                String::from_utf8(serde).unwrap()
            );
        }
    }
}
