//! `[fleet]`: several edges acting as one through Redis (or Valkey); and
//! `[incidents]`, the records each edge keeps of the attacks it saw.

use crate::types::Dur;
use serde::Deserialize;

/// The `[fleet]` table. Without it the edge is alone, exactly as before.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Fleet {
    /// `redis://host:port/db`, or `rediss://:password@host:port` for TLS;
    /// with `cluster = true`, any node of the cluster.
    pub redis: String,
    /// The store is a Redis Cluster.
    pub cluster: bool,
    /// A PEM file of the certificate authority to trust for `rediss://`
    /// (default: the system's roots).
    pub ca: Option<String>,
    /// This edge's name in the fleet; defaults to the host name.
    pub name: Option<String>,
    /// How often counts are sent and totals, decisions and edges read back
    /// (at most 250 ms: a fleet-wide limit holds to within one interval).
    pub sync_every: Dur,
    /// Every call to the store gives up after this.
    pub timeout: Dur,
    /// Connecting gives up after this.
    pub connect_timeout: Dur,
    /// Failures in a row that open the circuit (the edge stops calling and
    /// enforces its share of each limit) …
    pub failures_to_open: u32,
    /// … for this long before one call is tried again.
    pub open_for: Dur,
    /// An edge not heard from for this long is not counted as live.
    pub edge_ttl: Dur,
}

impl Default for Fleet {
    fn default() -> Self {
        Fleet {
            redis: String::new(),
            cluster: false,
            ca: None,
            name: None,
            sync_every: Dur::millis(250),
            timeout: Dur::millis(100),
            connect_timeout: Dur::millis(500),
            failures_to_open: 3,
            open_for: Dur::secs(1),
            edge_ttl: Dur::secs(5),
        }
    }
}

/// The `[incidents]` table: durable incident records (on by default).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Incidents {
    pub enabled: bool,
    /// Where incident records are written. Unset: `/var/lib/levee/incidents`,
    /// and if that cannot be created the edge says so once and records none;
    /// a directory given here that cannot be created stops the start.
    pub dir: Option<String>,
    /// An incident closes after the site has been `normal` this long.
    pub cooldown: Dur,
    /// Seconds are recorded one by one for this long, then per minute.
    pub fine_for: Dur,
    /// Where an alert is POSTed when an incident opens, changes mode or
    /// closes (`http://` or `https://`), signed with `webhook_secret`.
    pub webhook: Option<String>,
    pub webhook_secret: Option<String>,
    /// A command run with the alert's JSON on standard input, e.g.
    /// `["/usr/local/bin/page-oncall"]`.
    pub command: Vec<String>,
    /// Each delivery gives up after this.
    pub alert_timeout: Dur,
}

impl Default for Incidents {
    fn default() -> Self {
        Incidents {
            enabled: true,
            dir: None,
            cooldown: Dur::secs(60),
            fine_for: Dur::secs(6 * 3600),
            webhook: None,
            webhook_secret: None,
            command: Vec::new(),
            alert_timeout: Dur::secs(5),
        }
    }
}
