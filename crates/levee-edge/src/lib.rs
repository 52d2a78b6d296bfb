//! The edge: a hardened reverse proxy that keeps origins up under connection
//! and protocol floods.
//!
//! What it does, in the order a connection meets it (see ARCHITECTURE.md):
//! accept with connection caps (`listener`), PROXY header from trusted
//! peers, TLS with a handshake deadline (`tls`), protocol choice (ALPN or
//! the h2c preface); then the drivers (`h1`, `h2`) read each request and hand
//! it to the one request pipeline (`pipeline`): normalise, the edge's own
//! paths, route, gate (`ratelimit`, `defense`, `challenge`), micro-cache
//! (`cache`), forward with priority admission (`upstream`, `admission`),
//! respond at the send rate, one access-log record (`accesslog`). The admin
//! listener (`admin`) serves metrics, status, events and reload.
//!
//! The public surface is small: [`Edge`] (start, shut down), [`check`] (is a
//! configuration usable), [`Shared`] (what the binary's packet-filter feeder
//! reads and publishes), and their types. Everything else is the crate's own.
//!
//! What it does not do: parse attacker bytes itself (`levee-http` does),
//! decide what an attack is (`levee-detect` does), or filter packets.

mod accesslog;
mod acme;
mod admin;
mod admission;
mod alerts;
mod answer;
mod body;
mod bouncing;
mod cache;
mod challenge;
mod clock;
mod conn;
mod dashboard;
mod defense;
mod egress;
mod error;
mod events;
mod fleet;
mod gate;
mod h1;
mod h2;
mod incidents;
mod keys;
mod layering;
mod ledger;
mod listener;
mod lists;
mod membership;
mod metrics;
mod pace;
mod pipeline;
mod proxy;
mod ratelimit;
mod retention;
mod shared;
mod sources;
mod state;
mod tally;
mod tls;
mod upstream;

pub use error::BuildError;
pub use lists::{FilterView, ViewKey};

use arc_swap::ArcSwap;
use levee_config::Config;
use levee_limits::{ConnTracker, Marks};
use metrics::Metrics;
use state::State;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Whether a configuration can be turned into a running edge: files it
/// names are readable, certificates and keys parse, origins resolve.
/// This edge's name: `[fleet] name`, else the host name (in incident
/// records and the fleet's heartbeats alike).
pub fn edge_name(cfg: &Config) -> String {
    cfg.fleet
        .as_ref()
        .and_then(|f| f.name.clone())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "levee".into())
}

pub fn check(cfg: Config) -> Result<(), BuildError> {
    State::build(cfg, None, 0).map(|_| ())
}

/// Why the edge could not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("{0}")]
    Build(#[from] error::BuildError),
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
    /// The pseudonymised log's keys (`[access_log] key_dir`): the edge does
    /// not start rather than log raw addresses.
    #[error("{0}")]
    Keys(String),
    /// `[incidents] dir` cannot be used.
    #[error("{0}")]
    Incidents(String),
}

pub use accesslog::Verdict;
pub use retention::erase::{
    erase_offline as erase_retention, EraseError, Erased, FileErased, Person,
};
pub use retention::{
    hold as hold_retention, status as retention_status, verify as verify_retention,
};
pub use shared::{Loader, Shared};

/// Where the retention ledger of an access log is (`[access_log] ledger`,
/// by default beside the log).
pub fn ledger_path(cfg: &levee_config::AccessLog) -> std::path::PathBuf {
    ledger::path_of(cfg)
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
        let log =
            accesslog::AccessLog::start(&cfg.access_log, &cfg.retention, Arc::clone(&metrics))
                .map_err(|e| match e {
                    accesslog::StartError::Io(source) => EdgeError::AccessLog {
                        path: cfg.access_log.path.clone(),
                        source,
                    },
                    accesslog::StartError::Keys(k) => EdgeError::Keys(k.to_string()),
                })?;
        let incidents = incidents::Incidents::new(&cfg.incidents, &edge_name(&cfg))
            .map_err(EdgeError::Incidents)?;
        let tracker = ConnTracker::new(shared::caps(&cfg));
        let in_flight = ConnTracker::new(shared::flight_caps(&cfg));
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
            in_flight,
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
            fleet: fleet::FleetLink::default(),
            sources: sources::Sources::new(200_000),
            incidents,
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
        // Incident records: one second at a time.
        let sh = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tick.tick().await;
                sh.incidents.tick(
                    &sh.state,
                    &sh.events,
                    u64::from(sh.tracker.open()),
                    &sh.extra_metrics,
                );
            }
        }));
        // The adaptive defense's ticks (detectors, origin limits, knobs).
        let sh = Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut tightened = false;
            loop {
                tick.tick().await;
                sh.tick(&mut tightened);
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
