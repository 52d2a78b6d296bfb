//! The edge's own tables: `[trust]`, `[admin]`, `[access_log]`, `[drill]`, `[lists]`, `[challenge]`.

use crate::{Cidr, Dur};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Peers allowed to speak for clients.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Trust {
    /// CIDRs whose `X-Forwarded-For` and PROXY protocol headers are believed.
    pub proxies: Vec<Cidr>,
}

impl Trust {
    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        self.proxies.iter().any(|c| c.contains(ip))
    }
}

/// The admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Set to false to run without an admin listener.
    pub enabled: bool,
    /// Loopback by default; anything that changes state needs the token.
    pub address: SocketAddr,
    /// Bearer token for state-changing calls. Without one, those calls are refused.
    pub token: Option<String>,
}

impl Default for Admin {
    fn default() -> Self {
        Self {
            enabled: true,
            address: SocketAddr::from(([127, 0, 0, 1], 9090)),
            token: None,
        }
    }
}

/// The JSON-lines access log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessLog {
    /// `-` for standard output, `off` to disable, otherwise a file path (appended to).
    pub path: String,
    /// Lines buffered between the request path and the writer; when full, lines
    /// are counted as dropped and requests are never slowed.
    pub buffer: u32,
    /// Write adaptive-defense events (mode changes, rules, blocks, shedding)
    /// as JSON lines to standard error as well as to `/events`.
    pub events_to_stderr: bool,
    /// Write client addresses as keyed pseudonyms (HMAC-SHA-256), never raw.
    pub pseudonymize: bool,
    /// Keep the /24 (IPv4) or /48 (IPv6) in front of the pseudonym.
    pub keep_prefix: bool,
    /// Where the pseudonym keys live: a directory of its own, apart from the
    /// logs (required with `pseudonymize`).
    pub key_dir: Option<String>,
    /// How long one key is used (and a client keeps one pseudonym).
    pub key_rotation: Dur,
    /// How long a key is kept after its period ends, then destroyed: after
    /// that its pseudonyms cannot be linked to addresses by anything Levee keeps.
    pub key_linkable: Dur,
    /// The retention ledger (hash-chained JSON lines); default
    /// `retention-ledger.jsonl` beside the access log.
    pub ledger: Option<String>,
    /// With `pseudonymize`: also write the same lines with raw addresses to
    /// this file (kept `[retention] raw_days`, the pseudonymised log
    /// `pseudonymized_days`).
    pub raw_path: Option<String>,
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            path: "-".to_string(),
            buffer: 65_536,
            events_to_stderr: true,
            pseudonymize: false,
            keep_prefix: false,
            key_dir: None,
            key_rotation: Dur::secs(86_400),
            key_linkable: Dur::secs(86_400),
            ledger: None,
            raw_path: None,
        }
    }
}

/// Opt-in for `levee drill`: the edge answers `GET /.well-known/levee-drill`
/// with this token, and a drill refuses to attack an edge that does not.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Drill {
    pub token: Option<String>,
}

/// Networks refused at accept, and networks never refused by a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lists {
    /// Refused at accept (a reset, before any TLS work).
    pub block: Vec<Cidr>,
    /// Never refused by a block entry (static or dynamic).
    pub allow: Vec<Cidr>,
    /// Entries the admin API may add, at most.
    pub max_dynamic: u32,
    /// Files of CIDRs to block, one per line (`#` comments); read at start and on reload.
    pub block_files: Vec<PathBuf>,
    /// Files of CIDRs never blocked.
    pub allow_files: Vec<PathBuf>,
}

impl Default for Lists {
    fn default() -> Self {
        Lists {
            block: Vec::new(),
            allow: Vec::new(),
            max_dynamic: 100_000,
            block_files: Vec::new(),
            allow_files: Vec::new(),
        }
    }
}

/// The proof-of-work challenge's keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChallengeKeys {
    /// Master secret; edges with the same secret accept each other's tokens.
    /// Without one, each process makes a random one (clearances then do not
    /// survive a restart nor work across edges).
    pub secret: Option<String>,
    /// How often signing keys rotate (tokens of the previous period stay valid).
    pub key_period: Dur,
    /// How long a challenge may take to solve.
    pub ttl: Dur,
    /// Used solutions remembered to refuse replays.
    pub spent_capacity: u32,
}

impl Default for ChallengeKeys {
    fn default() -> Self {
        ChallengeKeys {
            secret: None,
            key_period: Dur::secs(3600),
            ttl: Dur::secs(300),
            spent_capacity: 1_000_000,
        }
    }
}

/// How long the access log's rotated files are kept (`[retention]`): the
/// edge deletes expired ones at start and then every `every`, records each
/// deletion in the ledger, and deletes nothing while a legal hold is active.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    pub enabled: bool,
    /// Days a raw (not pseudonymised) log file is kept.
    pub raw_days: u32,
    /// Days a pseudonymised log file is kept.
    pub pseudonymized_days: u32,
    /// Days a closed incident record is kept (`[incidents] dir`).
    pub incidents_days: u32,
    /// How often expired files are looked for.
    pub every: Dur,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            enabled: true,
            raw_days: 30,
            pseudonymized_days: 365,
            incidents_days: 365,
            every: Dur::secs(3600),
        }
    }
}
