//! End-to-end tests: a real `levee` process, a real origin and real clients
//! (raw sockets, curl, slowhttptest, raw HTTP/2 frames) on 127.0.0.0/8.
//! Each module is named after the attack or behaviour it checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access_log;
mod acme;
mod adaptive_defense;
mod admin_api;
mod block_list;
mod browser;
mod cache_poisoning;
mod challenge;
mod cold_start;
mod config_check;
mod conn_flood;
mod crowdsec;
mod dashboard;
mod demo;
mod drill;
mod egress_view;
mod fd_exhaustion;
mod fleet;
mod h2_continuation;
mod h2_frames;
mod h2_graceful_goaway;
mod h2_made_you_reset;
mod h2_ping_flood;
mod h2_rapid_reset;
mod header_trust;
mod host_differential;
mod hunt;
mod idle_memory;
mod in_flight_cap;
mod incidents;
mod log_parity;
mod malformed;
mod micro_cache;
mod origin_health;
mod origin_protection;
mod path_normalisation;
mod pipelined_non_reader;
mod proxying;
mod pseudonymised_log;
mod rate_limit;
mod redis_server;
mod reload;
mod report;
mod retention;
mod shutdown;
mod slow_post;
mod slow_read;
mod slowloris;
mod syn_flood;
mod systemd_unit;
mod tls;
mod websocket_slot;
mod xdp_edge;
mod xdp_filter;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use levee_origin::Stats;

/// The demo origin, run on its own runtime thread.
pub struct Origin {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
}

impl Origin {
    pub fn start() -> Origin {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let r = levee_origin::spawn("127.0.0.1:0".parse().unwrap())
                    .await
                    .unwrap();
                tx.send(r).unwrap();
                std::future::pending::<()>().await;
            });
        });
        let (addr, stats) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Origin { addr, stats }
    }

    /// Whether any request head the origin saw contains `needle`.
    pub fn saw(&self, needle: &str) -> bool {
        self.stats.recent_heads().iter().any(|h| h.contains(needle))
    }
}

/// A running `levee serve` process; killed on drop.
pub struct Edge {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    stderr: Arc<std::sync::Mutex<Vec<String>>>,
}

pub const TOKEN: &str = "test-admin-token";

/// A unique scratch directory under the target dir.
pub fn scratch(name: &str) -> PathBuf {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let d = base.join(format!("{name}-{}-{}", std::process::id(), rand_u32()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish() as u32
}

/// A configuration around `origin` with test-friendly deadlines; `extra` is
/// appended (it may add tables such as `[http2]` or more sites).
pub fn config(origin: SocketAddr, limits: &str, extra: &str) -> String {
    let mut limits = limits.to_string();
    for (k, v) in [("header_timeout", "\"2s\""), ("idle_timeout", "\"5s\"")] {
        if !limits.contains(k) {
            limits.push_str(&format!("\n{k} = {v}"));
        }
    }
    // Incident records only where a test asks for them (in its own directory).
    let incidents = if extra.contains("[incidents]") {
        ""
    } else {
        "[incidents]\nenabled = false\n"
    };
    format!(
        r#"
[[listener]]
address = "127.0.0.1:0"

[admin]
address = "127.0.0.1:0"
token = "{TOKEN}"

[access_log]
path = "ACCESS_LOG"

[limits]
{limits}

{incidents}
[[site]]
name = "test"
hosts = ["localhost", "127.0.0.1", "test.levee"]
[[site.origin]]
address = "{origin}"
{extra}
"#
    )
}

impl Edge {
    pub fn start(name: &str, config_text: &str) -> Edge {
        Self::start_with(name, config_text, &[])
    }

    pub fn start_with(name: &str, config_text: &str, args: &[&str]) -> Edge {
        let dir = scratch(name);
        let log = dir.join("access.log");
        let text = config_text.replace("ACCESS_LOG", &log.display().to_string());
        let config = dir.join("levee.toml");
        std::fs::write(&config, text).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
        cmd.arg("serve").arg("--config").arg(&config).args(args);
        Self::spawn(cmd, dir, config)
    }

    /// Start with a file-descriptor limit (through the shell's `ulimit`).
    pub fn start_limited(name: &str, config_text: &str, nofile: u32) -> Edge {
        let dir = scratch(name);
        let log = dir.join("access.log");
        let text = config_text.replace("ACCESS_LOG", &log.display().to_string());
        let config = dir.join("levee.toml");
        std::fs::write(&config, text).unwrap();
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -n {nofile} && exec \"$0\" serve --config \"$1\""
            ))
            .arg(env!("CARGO_BIN_EXE_levee"))
            .arg(&config);
        Self::spawn(cmd, dir, config)
    }

    /// Start as an unprivileged user (`nobody`, through util-linux's setpriv);
    /// the configuration is put where that user can read it.
    pub fn start_unprivileged(name: &str, config_text: &str) -> Edge {
        let dir = scratch(name);
        let config = std::env::temp_dir().join(format!("levee-{name}-{}.toml", std::process::id()));
        std::fs::write(&config, config_text.replace("ACCESS_LOG", "off")).unwrap();
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_levee"))
        .arg("serve")
        .arg("--config")
        .arg(&config);
        Self::spawn(cmd, dir, config)
    }

    /// `levee serve --demo` on free ports.
    pub fn start_demo() -> Edge {
        let dir = scratch("demo");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
        cmd.args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ]);
        let config = dir.join("none");
        Self::spawn(cmd, dir, config)
    }

    /// Start `cmd` (a `levee serve` the caller set up) as an edge whose files are in `dir`.
    pub fn spawn_cmd(cmd: Command, dir: PathBuf, config: PathBuf) -> Edge {
        Self::spawn(cmd, dir, config)
    }

    fn spawn(mut cmd: Command, dir: PathBuf, config: PathBuf) -> Edge {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let l2 = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                l2.lock().unwrap().push(line);
            }
        });
        let mut addr = None;
        let mut admin = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while addr.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("levee did not start: {:?}", lines.lock().unwrap()));
            if let Some(a) = line.strip_prefix("levee: edge listening on http://") {
                addr = Some(a.parse().unwrap());
            } else if let Some(a) = line.strip_prefix("levee: admin listening on http://") {
                admin = Some(a.parse().unwrap());
            } else if line.starts_with("levee: error") {
                panic!("levee failed to start: {line}");
            }
        }
        Edge {
            child,
            addr: addr.unwrap(),
            admin: admin.unwrap(),
            dir,
            config,
            stderr: lines,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn stderr(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// The value of a Prometheus sample, e.g. `levee_defense_total{reason="bare_lf"}`.
    pub fn metric(&self, sample: &str) -> f64 {
        let text = http_get(self.admin, "/metrics", &[]).1;
        text.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no sample {sample} in metrics"))
    }

    pub fn defense(&self, reason: &str) -> f64 {
        self.metric(&format!("levee_defense_total{{reason=\"{reason}\"}}"))
    }

    /// Wait (up to 2 s) for a defense counter to reach `min`: the client may
    /// see a connection end a moment before the edge has counted why.
    pub fn await_defense(&self, reason: &str, min: f64) -> f64 {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let v = self.defense(reason);
            if v >= min || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Access log lines (JSON), waiting for at least `n`.
    pub fn access_log(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
            let v: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if v.len() >= n || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Connect from a chosen source address in 127.0.0.0/8.
pub fn connect_from(src: IpAddr, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    s.bind(&SocketAddr::new(src, 0).into())?;
    s.connect_timeout(&dst.into(), Duration::from_secs(2))?;
    Ok(s.into())
}

/// Send raw bytes and read until the peer closes or `wait` passes.
pub fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> (String, bool) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(bytes).unwrap();
    read_until_close(&mut s, wait)
}

/// Read what arrives until EOF (`true`) or `wait` passes (`false`).
pub fn read_until_close(s: &mut TcpStream, wait: Duration) -> (String, bool) {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (String::from_utf8_lossy(&out).into_owned(), false);
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&out).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), false),
        }
    }
}

/// A one-shot HTTP/1.1 GET; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let (resp, _) = raw(addr, req.as_bytes(), Duration::from_secs(10));
    parse_response(&resp)
}

/// Split a raw HTTP/1 response into (status, body); status 0 if none.
pub fn parse_response(resp: &str) -> (u16, String) {
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// An HTTP POST to the admin API with the test token.
pub fn admin_post(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
    let (resp, _) = raw(addr, req.as_bytes(), Duration::from_secs(10));
    parse_response(&resp)
}

/// Run a command, returning (exit code, stdout, stderr).
pub fn run(cmd: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e} (run scripts/install-test-deps.sh)"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Run Debian's slowhttptest (`-g -o` report files under /tmp) and assert it completed.
pub fn slowhttptest(args: &[&str], report: &str) {
    let out = format!("/tmp/levee-{report}");
    let mut all = args.to_vec();
    all.extend_from_slice(&["-g", "-o", &out]);
    let (code, stdout, err) = run("slowhttptest", &all);
    assert_eq!(code, 0, "slowhttptest failed: {stdout} {err}");
}

/// Whether the server closed `s` (EOF or reset) within `wait`.
pub fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    read_until_close(s, wait).1
}

pub fn shutdown_write(s: &TcpStream) {
    let _ = s.shutdown(Shutdown::Write);
}

/// Run `levee drill` with exactly these arguments plus `--json`; returns
/// (exit code, summary, stderr).
pub fn drill_raw(e: &Edge, args: &[&str]) -> (i32, serde_json::Value, String) {
    let json = e.dir.join("raw.json");
    let _ = std::fs::remove_file(&json);
    let mut all = vec!["drill"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--json", json.to_str().unwrap()]);
    let (code, _, err) = run(env!("CARGO_BIN_EXE_levee"), &all);
    let summary = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .map_or(serde_json::Value::Null, |r| r["summary"].clone());
    (code, summary, err)
}
