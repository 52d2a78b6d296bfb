//! Fleet mode: several Levee edges act as one through Redis (or Valkey).
//!
//! Local-first: no request waits on the store. The edge decides every
//! request from its own state; this engine, on a thread of its own, runs a
//! *round* every `sync_every` (≤ 250 ms, [`round`]):
//!
//! 1. the limiters' local counts are added to the fleet's (`INCRBY` +
//!    `PEXPIRE … NX`, one pipeline per site's hash tag) and what the other
//!    edges counted comes back into the limiters (so a fleet-wide limit
//!    holds to within one round);
//! 2. the edge's new decisions (blocks, rules, pins) are written to the
//!    snapshot hash and appended to the decision stream, and the stream is
//!    read from where this edge left off (a joining or reconnecting edge
//!    loads the snapshot first: CrowdSec's startup + stream);
//! 3. a heartbeat is written and the other edges' are read.
//!
//! Failure is designed: every call has a timeout ([`store`]), a circuit
//! breaker ([`breaker`]) opens after repeated failures, and while it is
//! open the edge enforces its share of each limit (limit ÷ the edges last
//! seen live) with all its local defenses; it never fails closed nor fully
//! open. A store that answers garbage is a failure like any other.
//!
//! The key scheme is in [`keys`]. Why `redis` (redis-rs): the most used
//! client, tested against Redis and Valkey, with async single and cluster
//! connections and pipelines; its missing default timeouts are set here.

#![forbid(unsafe_code)]

pub mod breaker;
pub mod certs;
mod keys;
mod round;
mod store;
pub mod view;

use levee_limits::fleet::{CounterDelta, CounterTotal, Decision};
use std::sync::Arc;
use std::time::Duration;

pub use certs::{Answer, CertShare};
pub use round::{fleet_status, FleetReport};
pub use view::{EdgeSeen, View};

/// For the fuzz target: read `bytes` as a store's answer, the way each of
/// the engine's readers does (stream entries, edges, the snapshot, the
/// decisions inside). Never panics; the count of decisions read.
#[doc(hidden)]
pub fn read_answer(bytes: &[u8]) -> usize {
    round::read_answer(bytes)
}

/// What can go wrong talking to the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FleetError {
    #[error("the store: {0}")]
    Store(String),
    #[error("the store did not answer in time ({0})")]
    Timeout(&'static str),
    #[error("the store's answer to {what} is not what Levee writes: {detail}")]
    Garbage { what: &'static str, detail: String },
    #[error("this edge's [challenge] secret differs from the fleet's (the store holds another secret's fingerprint at {key}): clearances signed by one would be refused by the other; give every edge the same secret, or delete the key if the whole fleet's secret was changed")]
    SecretMismatch { key: String },
}

/// The edge as the fleet engine sees it (the binary implements it over
/// the edge's `Shared`).
pub trait Member: Send + Sync {
    /// Local counts since the last call (each is given once).
    fn take_counts(&self) -> Vec<CounterDelta>;
    /// What the rest of the fleet counted.
    fn apply_totals(&self, totals: &[CounterTotal]);
    /// Decisions this edge made since the last call.
    fn take_decisions(&self) -> Vec<Decision>;
    /// A decision another edge made; `Err` says why it cannot apply here.
    fn apply_decision(&self, d: &Decision) -> Result<(), String>;
    /// Live edges (this one included), and whether the edge is on its own
    /// (then it enforces `1 / live` of each limit).
    fn set_edges(&self, live: u32, degraded: bool);
    /// What this edge tells the others (its sites' modes and rules).
    fn heartbeat(&self) -> serde_json::Value;
    /// The engine's state, for `/status` and `/metrics`.
    fn show(&self, view: &View);
}

/// `[fleet]`, resolved.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: String,
    pub cluster: bool,
    /// PEM roots to trust for `rediss://` (`None`: the system's).
    pub ca_pem: Option<Vec<u8>>,
    pub name: String,
    pub sync_every: Duration,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub failures_to_open: u32,
    pub open_for: Duration,
    pub edge_ttl: Duration,
    /// A fingerprint of the challenge secret (never the secret).
    pub secret_fingerprint: String,
}

/// How the start went.
#[derive(Debug)]
pub enum Joined {
    /// Connected, secret checked, snapshot loaded.
    Connected,
    /// The store was unreachable: the edge starts on its own and keeps trying.
    Unreachable(FleetError),
}

/// Start the engine on its own thread. Returns once the first round has
/// run (or failed): a secret that differs from the fleet's is an error, so
/// that the edge refuses to start; an unreachable store is not.
pub fn start(s: Settings, member: Arc<dyn Member>) -> Result<Joined, FleetError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let wait = s.connect_timeout + 4 * s.timeout + Duration::from_secs(1);
    std::thread::Builder::new()
        .name("levee-fleet".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(FleetError::Store(format!("runtime: {e}"))));
                    return;
                }
            };
            rt.block_on(round::run(s, member, tx));
        })
        .map_err(|e| FleetError::Store(format!("thread: {e}")))?;
    match rx.recv_timeout(wait) {
        Ok(r) => r,
        Err(_) => Ok(Joined::Unreachable(FleetError::Timeout("the first round"))),
    }
}
