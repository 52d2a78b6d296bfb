//! What the engine shows: the store's state, the edges seen with their
//! last heartbeat, sync lag, errors and degraded mode (for `/status`,
//! `/metrics` and `levee fleet status`).

use serde::Serialize;

/// One edge of the fleet as last seen in the store.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EdgeSeen {
    pub name: String,
    pub last_heartbeat_unix_ms: u64,
    /// Heard from within `edge_ttl`.
    pub live: bool,
    /// What it said (sites' modes and rules, degraded or not).
    pub said: serde_json::Value,
}

/// The engine's state.
#[derive(Debug, Clone, Serialize, Default)]
pub struct View {
    pub name: String,
    /// `connected`, `unreachable` or `refused` (secret mismatch).
    pub store: &'static str,
    /// The circuit breaker: `closed`, `open` or `half_open`.
    pub breaker: &'static str,
    /// On its own: enforcing `1 / share_of` of each limit.
    pub degraded: bool,
    pub share_of: u32,
    pub edges: Vec<EdgeSeen>,
    pub last_sync_unix_ms: Option<u64>,
    /// How long the last successful round took.
    pub round_ms: Option<u64>,
    pub store_errors: u64,
    pub last_error: Option<String>,
    pub rounds: u64,
    pub counts_sent: u64,
    pub totals_applied: u64,
    pub decisions_sent: u64,
    pub decisions_applied: u64,
    /// Decisions from the store that could not be read or applied.
    pub decisions_refused: u64,
    /// Local decisions dropped because the outbox was full while the store was down.
    pub decisions_dropped: u64,
    pub snapshots_loaded: u64,
}

impl View {
    /// Prometheus text.
    pub fn metrics(&self, now_unix_ms: u64) -> String {
        let mut m = String::new();
        let mut g = |name: &str, help: &str, kind: &str, v: f64| {
            m.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}\n"
            ));
        };
        g(
            "levee_fleet_connected",
            "1 while the fleet's store answers",
            "gauge",
            f64::from(u8::from(self.store == "connected")),
        );
        g(
            "levee_fleet_degraded",
            "1 while this edge is on its own, enforcing its share of each limit",
            "gauge",
            f64::from(u8::from(self.degraded)),
        );
        g(
            "levee_fleet_edges_live",
            "edges heard from within edge_ttl, this one included",
            "gauge",
            f64::from(self.share_of),
        );
        let lag = self
            .last_sync_unix_ms
            .map_or(-1.0, |t| now_unix_ms.saturating_sub(t) as f64 / 1000.0);
        g(
            "levee_fleet_sync_age_seconds",
            "time since the last successful round (-1: none yet)",
            "gauge",
            lag,
        );
        g(
            "levee_fleet_round_seconds",
            "how long the last successful round took",
            "gauge",
            self.round_ms.map_or(-1.0, |r| r as f64 / 1000.0),
        );
        for (name, help, v) in [
            (
                "levee_fleet_store_errors_total",
                "failed or timed-out rounds",
                self.store_errors,
            ),
            ("levee_fleet_rounds_total", "successful rounds", self.rounds),
            (
                "levee_fleet_counts_sent_total",
                "counter increments sent",
                self.counts_sent,
            ),
            (
                "levee_fleet_decisions_sent_total",
                "decisions published",
                self.decisions_sent,
            ),
            (
                "levee_fleet_decisions_applied_total",
                "decisions of other edges applied",
                self.decisions_applied,
            ),
            (
                "levee_fleet_decisions_refused_total",
                "decisions read but not applied (unreadable, or not applicable here)",
                self.decisions_refused,
            ),
            (
                "levee_fleet_decisions_dropped_total",
                "local decisions dropped while the store was down (outbox full)",
                self.decisions_dropped,
            ),
        ] {
            m.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}\n"
            ));
        }
        m.push_str("# HELP levee_fleet_edge_heartbeat_age_seconds seconds since each edge's last heartbeat\n# TYPE levee_fleet_edge_heartbeat_age_seconds gauge\n");
        for e in &self.edges {
            m.push_str(&format!(
                "levee_fleet_edge_heartbeat_age_seconds{{edge=\"{}\"}} {}\n",
                e.name.replace(['"', '\\', '\n'], "_"),
                now_unix_ms.saturating_sub(e.last_heartbeat_unix_ms) as f64 / 1000.0
            ));
        }
        m
    }
}
