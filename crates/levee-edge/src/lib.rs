//! The edge: a hardened reverse proxy that keeps origins up under connection
//! and protocol floods.
//!
//! What it does, in the order a connection meets it (see ARCHITECTURE.md):
//! accept with connection caps ([`listener`]), PROXY header from trusted
//! peers, TLS with a handshake deadline ([`tls`]), protocol choice (ALPN or
//! the h2c preface), then per request: strict head parsing and deadlines
//! ([`h1`]) or metered HTTP/2 with explicit limits ([`h2`]), routing by host,
//! origin admission and the exchange with the origin ([`upstream`]), the
//! response with a send-rate deadline, and an access-log line ([`accesslog`]).
//! The admin listener ([`admin`]) serves metrics, status and reload.
//!
//! Between routing and the origin sit the per-site phases: request-rate
//! limits ([`ratelimit`]), the adaptive defense ([`defense`]: detection,
//! rules, modes), the browser challenge ([`challenge`]), the micro-cache
//! ([`cache`]) and priority admission ([`admission`]). Events of the
//! adaptive defense go to [`events`].
//!
//! What it does not do: parse attacker bytes itself (`levee-http` does),
//! decide what an attack is (`levee-detect` does), or filter packets.

pub mod accesslog;
pub mod admin;
pub mod admission;
pub mod answer;
pub mod cache;
pub mod challenge;
pub mod clock;
pub mod defense;
pub mod events;
pub mod gate;
pub mod h1;
pub mod h2;
pub mod listener;
pub mod lists;
pub mod metrics;
pub mod pace;
pub mod pipeline;
pub mod proxy;
pub mod ratelimit;
pub mod state;
pub mod tls;
pub mod upstream;

use arc_swap::ArcSwap;
use levee_config::Config;
use levee_limits::{ConnCaps, ConnTracker, Marks};
use metrics::Metrics;
use serde::Serialize;
use state::State;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What the edge decided about a request. A refusal is a verdict, not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allow,
    Block,
    Challenge,
    Shed,
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("{0}")]
    Build(#[from] state::BuildError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot open the access log {path}: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
}

/// Re-reads the configuration for a reload (SIGHUP or the admin API).
pub type Loader = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// State shared by every task of the edge.
pub struct Shared {
    pub state: ArcSwap<State>,
    pub metrics: Arc<Metrics>,
    pub log: accesslog::AccessLog,
    pub tracker: Arc<ConnTracker>,
    pub marks: Mutex<Marks>,
    /// Block and allow lists, consulted at accept.
    pub lists: std::sync::RwLock<lists::Lists>,
    /// Used challenge solutions (replay protection), bounded.
    pub spent: Mutex<levee_challenge::SpentSet>,
    pub shutdown: watch::Receiver<bool>,
    /// Set with `shutdown`; cheap to read on every request.
    stopping: std::sync::atomic::AtomicBool,
    pub started: Instant,
    /// Mode changes, rules, automatic blocks, shedding (`/events`).
    pub events: events::Events,
    /// Some site is under attack: connection-level knobs are tightened.
    pub tightened: std::sync::atomic::AtomicBool,
    pub listen: Vec<SocketAddr>,
    /// Prometheus text other parts of the process publish for `/metrics`
    /// (the packet filter's counters, written by the binary's feeder).
    pub extra_metrics: Mutex<String>,
    generation: AtomicU64,
    loader: Option<Loader>,
    reload_lock: Mutex<()>,
}

impl Shared {
    /// Re-read and apply the configuration. In-flight requests and open
    /// connections keep going; new requests see the new state. Listener
    /// addresses and the admin address need a restart to change.
    pub fn reload(&self) -> Result<u64, String> {
        let _g = self
            .reload_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            let loader = self
                .loader
                .as_ref()
                .ok_or("this edge has no configuration file to reload")?;
            let cfg = loader()?;
            let gen = self.generation.load(Ordering::Relaxed) + 1;
            let old = self.state.load();
            let st = State::build(cfg, Some(&old), gen).map_err(|e| e.to_string())?;
            self.tracker.set_caps(caps(&st.cfg));
            self.lists
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .reconfigure(&st.cfg.lists);
            self.state.store(Arc::new(st));
            self.generation.store(gen, Ordering::Relaxed);
            Ok(gen)
        })();
        // Reopen the access log either way: a reload is how rotation is signalled.
        self.log.reopen();
        match &result {
            Ok(_) => self.metrics.reloads.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.metrics.reload_failures.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    /// Remember that `ip` misbehaved (a protocol flood).
    pub fn mark(&self, ip: std::net::IpAddr, reason: &'static str) {
        self.metrics.clients_marked.fetch_add(1, Ordering::Relaxed);
        self.marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mark(ip, reason, clock::now_ms());
    }

    /// Count a refusal that happened before any request (a connection cap, a
    /// handshake deadline, a protocol flood) and write its access-log line.
    pub fn refuse_connection(
        &self,
        ip: std::net::IpAddr,
        reason: metrics::Reason,
        tls: Option<&'static str>,
        proto: &'static str,
    ) {
        self.metrics.defend(reason);
        self.log.log(&accesslog::LogLine {
            ts_ms: clock::unix_ms(),
            client: ip,
            site: "",
            method: "",
            path: "",
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            duration_us: 0,
            origin_us: None,
            verdict: Verdict::Block,
            reason: reason.label(),
            tls,
            ja4: None,
            proto,
            request_id: "",
        });
    }

    /// Whether `ip` is on a block list (and not allow-listed).
    pub fn is_blocked(&self, ip: std::net::IpAddr) -> bool {
        self.lists
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .blocked(ip, clock::now_ms())
    }

    /// Whether a protocol defense marked `ip` abusive.
    pub fn is_marked(&self, ip: std::net::IpAddr) -> bool {
        self.marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(ip)
            .is_some()
    }

    pub fn shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

pub(crate) fn caps(cfg: &Config) -> ConnCaps {
    ConnCaps {
        global: cfg.limits.max_connections,
        per_ip: cfg.limits.max_connections_per_ip,
        per_prefix: cfg.limits.max_connections_per_prefix,
    }
}

/// A worker thread: a single-threaded runtime running the accept loops of
/// its sockets and every connection they accept.
fn worker(socks: Vec<(std::net::TcpListener, levee_config::Listener)>, shared: Arc<Shared>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("levee: cannot start a worker runtime: {e}");
            return;
        }
    };
    rt.block_on(async move {
        for (sock, lcfg) in socks {
            match tokio::net::TcpListener::from_std(sock) {
                Ok(l) => {
                    tokio::spawn(listener::accept_loop(l, lcfg, Arc::clone(&shared)));
                }
                Err(e) => eprintln!("levee: cannot use a listening socket: {e}"),
            }
        }
        // Connections live on this runtime: keep it running until the process exits.
        std::future::pending::<()>().await;
    });
}

/// A running edge.
pub struct Edge {
    pub shared: Arc<Shared>,
    /// Bound client listener addresses, in configuration order.
    pub listen: Vec<SocketAddr>,
    /// Bound admin address.
    pub admin: Option<SocketAddr>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Edge {
    /// Bind every listener and start serving on `workers` threads, each with
    /// its own single-threaded runtime and its own `SO_REUSEPORT` socket per
    /// listener (the nginx worker model: no work stealing, no cross-thread
    /// wake-ups on the request path). The admin listener and health checks run
    /// on the calling runtime.
    pub async fn start(
        cfg: Config,
        loader: Option<Loader>,
        workers: usize,
    ) -> Result<Edge, EdgeError> {
        let workers = workers.max(1);
        let metrics = Arc::new(Metrics::default());
        let log = accesslog::AccessLog::start(
            &cfg.access_log.path,
            cfg.access_log.buffer as usize,
            Arc::clone(&metrics),
        )
        .map_err(|e| EdgeError::AccessLog {
            path: cfg.access_log.path.clone(),
            source: e,
        })?;
        let tracker = ConnTracker::new(caps(&cfg));
        // listeners[w] = the sockets of worker w.
        let mut listeners: Vec<Vec<(std::net::TcpListener, levee_config::Listener)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut listen = Vec::new();
        for l in &cfg.listener {
            let mut addr = l.address;
            for (w, socks) in listeners.iter_mut().enumerate() {
                let sock = listener::bind_std(addr, true)
                    .map_err(|e| EdgeError::Listen { addr, source: e })?;
                if w == 0 {
                    // Port 0 picks a port once; the other workers join it.
                    addr = sock
                        .local_addr()
                        .map_err(|e| EdgeError::Listen { addr, source: e })?;
                    listen.push(addr);
                }
                socks.push((sock, l.clone()));
            }
        }
        let admin_sock = if cfg.admin.enabled {
            Some(
                listener::bind(cfg.admin.address).map_err(|e| EdgeError::Listen {
                    addr: cfg.admin.address,
                    source: e,
                })?,
            )
        } else {
            None
        };
        let admin = admin_sock.as_ref().and_then(|s| s.local_addr().ok());
        let echo_events = cfg.access_log.events_to_stderr;
        let state = State::build(cfg, None, 0)?;
        let spent_capacity = state.cfg.challenge.spent_capacity as usize;
        let lists = lists::Lists::new(&state.cfg.lists);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            state: ArcSwap::from_pointee(state),
            metrics,
            log,
            tracker,
            marks: Mutex::new(Marks::new(10_000)),
            spent: Mutex::new(levee_challenge::SpentSet::new(spent_capacity)),
            lists: std::sync::RwLock::new(lists),
            shutdown: shutdown_rx,
            stopping: std::sync::atomic::AtomicBool::new(false),
            started: Instant::now(),
            events: events::Events::new(echo_events),
            tightened: std::sync::atomic::AtomicBool::new(false),
            listen: listen.clone(),
            extra_metrics: Mutex::new(String::new()),
            generation: AtomicU64::new(0),
            loader,
            reload_lock: Mutex::new(()),
        });
        let mut tasks = Vec::new();
        for (w, socks) in listeners.into_iter().enumerate() {
            let sh = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("levee-worker-{w}"))
                .spawn(move || worker(socks, sh))
                .map_err(|e| EdgeError::Listen {
                    addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                    source: e,
                })?;
        }
        if let Some(a) = admin_sock {
            tasks.push(tokio::spawn(admin::serve(a, Arc::clone(&shared))));
        }
        // Expire dynamic blocks once a second.
        let sh = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                sh.lists
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .expire(clock::now_ms());
            }
        }));
        // The adaptive defense's ticks (detectors, origin limits, knobs).
        let sh = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut tightened = false;
            loop {
                tick.tick().await;
                defense::tick_all(&sh, &mut tightened);
            }
        }));
        Ok(Edge {
            shared,
            listen,
            admin,
            shutdown_tx,
            tasks,
        })
    }

    /// Stop accepting, let open connections finish their current request
    /// (HTTP/2: GOAWAY), and wait for them up to `drain`. Returns the number
    /// of connections still open at the deadline.
    pub async fn shutdown(self, drain: Duration) -> u32 {
        self.shared.stopping.store(true, Ordering::Relaxed);
        let _ = self.shutdown_tx.send(true);
        for t in &self.tasks {
            t.abort();
        }
        let deadline = Instant::now() + drain;
        while self.shared.tracker.open() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.shared.tracker.open()
    }
}
