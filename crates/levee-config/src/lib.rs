//! Levee's configuration: the TOML schema, its defaults and its validation.
//!
//! This crate is pure: it turns text into a validated [`Config`] or into a
//! [`ConfigError`] that names the file, the line and the key path of what was
//! wrong (`levee.toml:12: site[0].origin[1].address: ...`). It never reads files,
//! opens sockets or looks at the clock; the caller passes the text in.
//!
//! Unknown keys are rejected everywhere (`deny_unknown_fields`): a typo in a
//! security setting must never be silently ignored.

mod defense;
mod types;
mod xdp;

pub use defense::{parse_cidr_list, Cache, Defense, IgnoreQuery, ModeName, RuleAction};
pub use types::{ByteSize, Cidr, Dur};
pub use xdp::{Xdp, XdpMode};

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// A configuration problem, located as precisely as the input allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {path}: {message}", line = line_display(*.line), path = path_display(.path))]
pub struct ConfigError {
    /// The file name as given by the caller (used only for the message).
    pub file: String,
    /// 1-based line of the offending key or value, when known.
    pub line: Option<usize>,
    /// Dotted key path, e.g. `site[0].origin[1].address`.
    pub path: String,
    /// What is wrong and, where possible, what to do.
    pub message: String,
}

fn line_display(line: Option<usize>) -> String {
    line.map_or_else(|| "?".to_string(), |l| l.to_string())
}

fn path_display(path: &str) -> &str {
    if path.is_empty() || path == "." {
        "(top level)"
    } else {
        path
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the edge accepts client connections (`[[listener]]`).
    #[serde(default)]
    pub listener: Vec<Listener>,
    /// Certificates for TLS listeners, chosen by SNI.
    #[serde(default)]
    pub tls: Tls,
    /// Connection- and HTTP/1-level defenses.
    #[serde(default)]
    pub limits: Limits,
    /// HTTP/2 limits; every one is set explicitly on each connection.
    #[serde(default)]
    pub http2: Http2,
    /// Which peers may speak for clients (X-Forwarded-For, PROXY protocol).
    #[serde(default)]
    pub trust: Trust,
    /// The admin listener.
    #[serde(default)]
    pub admin: Admin,
    /// The JSON access log.
    #[serde(default)]
    pub access_log: AccessLog,
    /// Opt-in for `levee drill`.
    #[serde(default)]
    pub drill: Drill,
    /// Keys for the browser challenge (shared by every edge of a fleet).
    #[serde(default)]
    pub challenge: ChallengeKeys,
    /// Static block and allow lists (the admin API adds expiring blocks).
    #[serde(default)]
    pub lists: Lists,
    /// Protected sites (`[[site]]`), chosen by Host / SNI.
    #[serde(default)]
    pub site: Vec<Site>,
    /// The XDP packet filter the edge feeds (off unless `iface` is set).
    #[serde(default)]
    pub xdp: Xdp,
}

/// One listening socket.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `ip:port`; port 0 picks a free port (tests).
    pub address: SocketAddr,
    /// Terminate TLS here (needs `[[tls.certificate]]`).
    #[serde(default)]
    pub tls: bool,
    /// Expect a PROXY protocol v1/v2 header from trusted peers (`[trust] proxies`).
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Accept cleartext HTTP/2 with prior knowledge (h2c) on a non-TLS listener.
    #[serde(default = "yes")]
    pub h2c: bool,
}

fn yes() -> bool {
    true
}

/// TLS certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default)]
    pub certificate: Vec<Certificate>,
}

/// A certificate chain and key for a set of server names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// SNI names served with this certificate; the first certificate is also the
    /// fallback for clients that send no SNI.
    pub server_names: Vec<String>,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Connection- and HTTP/1-level defenses. Defaults are safe for a public edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open client connections, all clients together.
    pub max_connections: u32,
    /// Open connections from one client address.
    pub max_connections_per_ip: u32,
    /// Open connections from one /24 (IPv4) or /64 (IPv6) prefix.
    pub max_connections_per_prefix: u32,
    /// Deadline for the TLS handshake.
    pub tls_handshake_timeout: Dur,
    /// Deadline for the PROXY protocol header from a trusted peer.
    pub proxy_protocol_timeout: Dur,
    /// Deadline for the whole request head, from its first byte (slowloris).
    pub header_timeout: Dur,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Dur,
    /// Minimum request body receive rate in bytes/s, after `body_grace` (slow POST).
    pub min_body_rate: ByteSize,
    /// Grace period before `min_body_rate` applies.
    pub body_grace: Dur,
    /// Minimum response send rate in bytes/s, after `send_grace` (slow read).
    pub min_send_rate: ByteSize,
    /// Grace period before `min_send_rate` applies.
    pub send_grace: Dur,
    /// Requests served on one connection before it is closed.
    pub max_requests_per_connection: u32,
    /// Size of the whole request head.
    pub max_header_bytes: ByteSize,
    /// Number of request header fields.
    pub max_headers: u32,
    /// Length of the request target.
    pub max_uri_bytes: ByteSize,
    /// Request body size.
    pub max_body_bytes: ByteSize,
    /// Request bodies up to this size are read completely (at `min_body_rate`)
    /// before the origin is contacted: a slow or malformed small body never
    /// reaches the origin. Larger bodies are streamed.
    pub request_buffer: ByteSize,
    /// Deadline for draining connections on shutdown.
    pub drain_timeout: Dur,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 50_000,
            max_connections_per_ip: 256,
            max_connections_per_prefix: 1024,
            tls_handshake_timeout: Dur::secs(5),
            proxy_protocol_timeout: Dur::secs(5),
            header_timeout: Dur::secs(10),
            idle_timeout: Dur::secs(60),
            min_body_rate: ByteSize(1024),
            body_grace: Dur::secs(5),
            min_send_rate: ByteSize(1024),
            send_grace: Dur::secs(5),
            max_requests_per_connection: 10_000,
            max_header_bytes: ByteSize(16 * 1024),
            max_headers: 100,
            max_uri_bytes: ByteSize(8 * 1024),
            max_body_bytes: ByteSize(10 * 1024 * 1024),
            request_buffer: ByteSize(64 * 1024),
            drain_timeout: Dur::secs(10),
        }
    }
}

/// HTTP/2 limits. None of the `h2` library defaults is relied upon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http2 {
    /// SETTINGS_MAX_CONCURRENT_STREAMS; also the cap on streams whose origin
    /// work is still running (a reset stream counts until its work ends).
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: ByteSize,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: ByteSize,
    /// SETTINGS_INITIAL_WINDOW_SIZE (per stream).
    pub initial_stream_window: ByteSize,
    /// Connection-level receive window.
    pub initial_connection_window: ByteSize,
    /// Bytes buffered per stream towards the client.
    pub max_send_buffer: ByteSize,
    /// CONTINUATION frames allowed in one header block.
    pub max_continuation_frames: u32,
    /// Remotely reset streams queued before being accepted (h2's Rapid Reset guard).
    pub max_pending_accept_reset_streams: u32,
    /// Streams we reset because of the peer's protocol errors (MadeYouReset).
    pub max_local_error_reset_streams: u32,
    /// Locally reset streams remembered at once.
    pub max_concurrent_reset_streams: u32,
    /// Length of the flood-counting window.
    pub flood_window: Dur,
    /// RST_STREAM frames from the client per window.
    pub max_rst_frames: u32,
    /// PING frames per window.
    pub max_ping_frames: u32,
    /// SETTINGS frames per window.
    pub max_settings_frames: u32,
    /// DATA frames with an empty payload and no END_STREAM per window.
    pub max_empty_data_frames: u32,
    /// WINDOW_UPDATE frames per window.
    pub max_window_update_frames: u32,
    /// Streams refused because too many were in flight, per window.
    pub max_refused_streams: u32,
}

impl Default for Http2 {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            max_header_list_size: ByteSize(32 * 1024),
            max_frame_size: ByteSize(16 * 1024),
            initial_stream_window: ByteSize(256 * 1024),
            initial_connection_window: ByteSize(1024 * 1024),
            max_send_buffer: ByteSize(256 * 1024),
            max_continuation_frames: 8,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 64,
            max_concurrent_reset_streams: 50,
            flood_window: Dur::secs(10),
            max_rst_frames: 200,
            max_ping_frames: 50,
            max_settings_frames: 50,
            max_empty_data_frames: 100,
            max_window_update_frames: 2000,
            max_refused_streams: 100,
        }
    }
}

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
}

impl Default for AccessLog {
    fn default() -> Self {
        Self {
            path: "-".to_string(),
            buffer: 65_536,
            events_to_stderr: true,
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

/// When a site challenges browsers.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum ChallengeMode {
    /// Never (the default; adaptive defense will turn it on under attack).
    #[default]
    Off,
    /// Every browser without a valid clearance.
    Always,
    /// Only while the site is under attack (set by the adaptive defense or
    /// pinned), and then only clients that are neither staff, verified nor
    /// returning; and always for requests matching a challenge rule.
    Auto,
}

/// A site's challenge policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteChallenge {
    pub mode: ChallengeMode,
    /// Leading zero bits of SHA-256 asked for: 2^bits hashes expected.
    pub bits: u8,
    /// How long a clearance lasts.
    pub clearance_ttl: Dur,
    /// Path prefixes never challenged (APIs, monitoring, webhooks).
    pub exempt_paths: Vec<String>,
    /// Clients never challenged: staff networks, verified crawlers.
    pub allow: Vec<Cidr>,
    /// The page's text.
    pub text: String,
    /// Bearer tokens (`Authorization: Bearer ...`) that staff tools carry: never challenged.
    pub staff_tokens: Vec<String>,
    /// Offer browsers without JavaScript a wait-and-refresh path: after
    /// `fallback_wait` they get a clearance lasting `fallback_clearance_ttl`
    /// (lower trust: shorter, and logged as such).
    pub noscript_fallback: bool,
    pub fallback_wait: Dur,
    pub fallback_clearance_ttl: Dur,
    /// Extra difficulty for clients the edge has marked abusive.
    pub marked_extra_bits: u8,
}

impl Default for SiteChallenge {
    fn default() -> Self {
        SiteChallenge {
            mode: ChallengeMode::Off,
            bits: 16,
            clearance_ttl: Dur::secs(3600),
            exempt_paths: vec!["/.well-known/".into()],
            allow: Vec::new(),
            text:
                "Checking that you are a person, not a bot. This takes a moment and happens once."
                    .into(),
            staff_tokens: Vec::new(),
            noscript_fallback: false,
            fallback_wait: Dur::secs(5),
            fallback_clearance_ttl: Dur::secs(300),
            marked_extra_bits: 4,
        }
    }
}

/// Request-rate limits, counted in fixed memory; 0 turns a limit off.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimit {
    /// Requests per `window` from one client address.
    pub per_ip: u32,
    /// Requests per `window` from one /24 (IPv4) or /64 (IPv6).
    pub per_prefix: u32,
    /// Requests per `window` to the site (or route) in all.
    pub total: u32,
    /// The counting window (default 1 s).
    pub window: Option<Dur>,
}

/// A class of routes (login, search, API...) with its own limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub name: String,
    /// Path prefixes of the class.
    pub paths: Vec<String>,
    #[serde(default)]
    pub per_ip: u32,
    #[serde(default)]
    pub per_prefix: u32,
    #[serde(default)]
    pub total: u32,
    #[serde(default)]
    pub window: Option<Dur>,
}

impl Route {
    /// The route's limits.
    pub fn limit(&self) -> RateLimit {
        RateLimit {
            per_ip: self.per_ip,
            per_prefix: self.per_prefix,
            total: self.total,
            window: self.window,
        }
    }
}

/// How requests are spread over a site's origins.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    #[default]
    RoundRobin,
    LeastOutstanding,
}

/// A protected site.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Site {
    /// A short name used in metrics and logs.
    pub name: String,
    /// Host names (matched against Host and SNI, case-insensitive, port ignored).
    pub hosts: Vec<String>,
    /// Upstream servers (`[[site.origin]]`).
    pub origin: Vec<Origin>,
    #[serde(default)]
    pub balance: Balance,
    /// Concurrent requests in flight to one origin.
    #[serde(default = "default_origin_concurrency")]
    pub max_concurrent_per_origin: u32,
    /// Requests that may wait for a slot; beyond it, 503 at once.
    #[serde(default = "default_queue")]
    pub queue: u32,
    /// How long a request may wait in that queue.
    #[serde(default = "default_queue_timeout")]
    pub queue_timeout: Dur,
    /// Deadline to connect to an origin.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Deadline for the origin's response head.
    #[serde(default = "default_response_timeout")]
    pub response_timeout: Dur,
    /// Idle keep-alive connections kept per origin.
    #[serde(default = "default_pool")]
    pub max_idle_per_origin: u32,
    /// Active health checks; passive checks are always on.
    #[serde(default)]
    pub health: Option<Health>,
    /// The browser challenge (`[site.challenge]`).
    #[serde(default)]
    pub challenge: SiteChallenge,
    /// Request-rate limits for the whole site (`[site.rate_limit]`).
    #[serde(default)]
    pub rate_limit: RateLimit,
    /// Route classes with their own limits (`[[site.route]]`), first match wins.
    #[serde(default)]
    pub route: Vec<Route>,
    /// Consecutive failures (connect errors, timeouts, 5xx) that mark an origin down.
    #[serde(default = "default_passive_failures")]
    pub passive_failures: u32,
    /// How long a passively failed origin is left alone.
    #[serde(default = "default_passive_cooldown")]
    pub passive_cooldown: Dur,
    /// Adaptive defense (`[site.defense]`): detection, modes, rules, priority admission.
    #[serde(default)]
    pub defense: Defense,
    /// Micro-cache and serve-stale (`[site.cache]`).
    #[serde(default)]
    pub cache: Cache,
    /// Forwarding fields the edge owns (`X-Real-IP`, `X-Forwarded-Host`, ...)
    /// that this site's origin may still receive from untrusted clients.
    #[serde(default)]
    pub allow_client_headers: Vec<String>,
}

fn default_origin_concurrency() -> u32 {
    512
}
fn default_queue() -> u32 {
    128
}
fn default_queue_timeout() -> Dur {
    Dur::millis(1000)
}
fn default_connect_timeout() -> Dur {
    Dur::secs(3)
}
fn default_response_timeout() -> Dur {
    Dur::secs(30)
}
fn default_pool() -> u32 {
    256
}
fn default_passive_failures() -> u32 {
    5
}
fn default_passive_cooldown() -> Dur {
    Dur::secs(10)
}

/// One upstream server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// `host:port`.
    pub address: String,
    /// Speak TLS to the origin.
    #[serde(default)]
    pub tls: bool,
    /// Name to verify the origin's certificate against (default: host of `address`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// PEM CA bundle for the origin's certificate (default: the system's).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// Active health checks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    pub path: String,
    #[serde(default = "default_health_interval")]
    pub interval: Dur,
    #[serde(default = "default_health_timeout")]
    pub timeout: Dur,
    /// Consecutive successes to mark up.
    #[serde(default = "default_rise")]
    pub rise: u32,
    /// Consecutive failures to mark down.
    #[serde(default = "default_fall")]
    pub fall: u32,
}

fn default_health_interval() -> Dur {
    Dur::secs(5)
}
fn default_health_timeout() -> Dur {
    Dur::secs(2)
}
fn default_rise() -> u32 {
    2
}
fn default_fall() -> u32 {
    3
}

/// Parse and validate a configuration. `file` is used in messages only.
pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
    let de = toml::Deserializer::new(text);
    let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let line = inner.span().map(|s| line_of(text, s.start));
        let mut message = inner.message().trim().to_string();
        if message.is_empty() {
            // Some syntax errors carry no message of their own: say what a line needs.
            message = "invalid TOML: expected `key = value`, a [table] or an [[array of tables]]"
                .to_string();
        }
        ConfigError {
            file: file.to_string(),
            line,
            path,
            message,
        }
    })?;
    validate(&cfg).map_err(|(path, message)| ConfigError {
        file: file.to_string(),
        line: locate(text, &path),
        path,
        message,
    })?;
    Ok(cfg)
}

fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Best-effort line for a key path found by validation (after parsing succeeded):
/// the line of the last key segment's `n`-th table header or key.
fn locate(text: &str, path: &str) -> Option<usize> {
    // Walk the path: each `name[i]` selects the i-th `[[name]]`-style header
    // occurrence after the current position; a plain `name` finds `name =`.
    let mut pos = 0usize;
    let mut prefix = String::new();
    for seg in path.split('.') {
        let (name, idx) = match seg.find('[') {
            Some(b) => {
                let idx = seg[b + 1..].trim_end_matches(']').parse::<usize>().ok()?;
                (&seg[..b], Some(idx))
            }
            None => (seg, None),
        };
        let full = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        };
        match idx {
            Some(i) => {
                let header = format!("[[{full}]]");
                let mut found = None;
                let mut from = pos;
                for _ in 0..=i {
                    let at = text[from..].find(&header)? + from;
                    found = Some(at);
                    from = at + header.len();
                }
                match found {
                    Some(at) => pos = at,
                    None => {
                        // An inline array: find the key and stop.
                        let at = text[pos..].find(&format!("{name} ="))? + pos;
                        return Some(line_of(text, at));
                    }
                }
            }
            None => {
                let at = text[pos..]
                    .find(&format!("{name} ="))
                    .or_else(|| text[pos..].find(&format!("{name}=")))
                    .or_else(|| text[pos..].find(&format!("[{full}]")));
                pos += at?;
            }
        }
        prefix = full;
    }
    Some(line_of(text, pos))
}

fn validate(cfg: &Config) -> Result<(), (String, String)> {
    xdp::validate(&cfg.xdp)?;
    if cfg.listener.is_empty() {
        return Err((
            "listener".into(),
            "no listener: add a [[listener]] table with address = \"0.0.0.0:80\"".into(),
        ));
    }
    let any_tls = cfg.listener.iter().any(|l| l.tls);
    if any_tls && cfg.tls.certificate.is_empty() {
        let i = cfg.listener.iter().position(|l| l.tls).unwrap_or(0);
        return Err((
            format!("listener[{i}].tls"),
            "a TLS listener needs at least one [[tls.certificate]] (server_names, cert, key)"
                .into(),
        ));
    }
    for (i, c) in cfg.tls.certificate.iter().enumerate() {
        if c.server_names.is_empty() {
            return Err((
                format!("tls.certificate[{i}].server_names"),
                "list at least one server name".into(),
            ));
        }
    }
    let l = &cfg.limits;
    for (name, v) in [
        ("max_connections", l.max_connections),
        ("max_connections_per_ip", l.max_connections_per_ip),
        ("max_connections_per_prefix", l.max_connections_per_prefix),
        ("max_requests_per_connection", l.max_requests_per_connection),
        ("max_headers", l.max_headers),
    ] {
        if v == 0 {
            return Err((format!("limits.{name}"), "must be at least 1".into()));
        }
    }
    if l.max_header_bytes.0 < 1024 {
        return Err((
            "limits.max_header_bytes".into(),
            "must be at least 1KiB".into(),
        ));
    }
    if l.max_uri_bytes.0 > l.max_header_bytes.0 {
        return Err((
            "limits.max_uri_bytes".into(),
            "must not exceed limits.max_header_bytes".into(),
        ));
    }
    let h = &cfg.http2;
    if h.max_concurrent_streams == 0 {
        return Err((
            "http2.max_concurrent_streams".into(),
            "must be at least 1".into(),
        ));
    }
    if !(16_384..=16_777_215).contains(&h.max_frame_size.0) {
        return Err((
            "http2.max_frame_size".into(),
            "must be between 16KiB and 16MiB-1 (RFC 9113)".into(),
        ));
    }
    if h.initial_stream_window.0 > 0x7fff_ffff || h.initial_connection_window.0 > 0x7fff_ffff {
        return Err((
            "http2.initial_stream_window".into(),
            "windows must be below 2^31".into(),
        ));
    }
    if h.flood_window.as_duration().is_zero() {
        return Err(("http2.flood_window".into(), "must be positive".into()));
    }
    if cfg.admin.token.as_deref() == Some("") {
        return Err((
            "admin.token".into(),
            "empty token: remove the key or set a long random value".into(),
        ));
    }
    if cfg.site.is_empty() {
        return Err((
            "site".into(),
            "no site: add a [[site]] with name, hosts and at least one [[site.origin]]".into(),
        ));
    }
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (si, s) in cfg.site.iter().enumerate() {
        if s.name.is_empty()
            || !s
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err((
                format!("site[{si}].name"),
                "use letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if s.hosts.is_empty() {
            return Err((format!("site[{si}].hosts"), "list at least one host".into()));
        }
        for h in &s.hosts {
            let h = h.to_ascii_lowercase();
            if h.is_empty() || h.contains(['/', ' ', '\t']) {
                return Err((
                    format!("site[{si}].hosts"),
                    format!("{h:?} is not a host name"),
                ));
            }
            if let Some((_, other)) = seen.iter().find(|(x, _)| *x == h) {
                return Err((
                    format!("site[{si}].hosts"),
                    format!("host {h:?} is already served by site[{other}]"),
                ));
            }
            seen.push((h, si));
        }
        if s.origin.is_empty() {
            return Err((
                format!("site[{si}].origin"),
                "add at least one [[site.origin]] with address = \"host:port\"".into(),
            ));
        }
        for (oi, o) in s.origin.iter().enumerate() {
            if split_host_port(&o.address).is_none() {
                return Err((
                    format!("site[{si}].origin[{oi}].address"),
                    format!("{:?} is not host:port", o.address),
                ));
            }
        }
        if s.max_concurrent_per_origin == 0 {
            return Err((
                format!("site[{si}].max_concurrent_per_origin"),
                "must be at least 1".into(),
            ));
        }
        for (ri, r) in s.route.iter().enumerate() {
            if r.paths.is_empty() || r.paths.iter().any(|p| !p.starts_with('/')) {
                return Err((
                    format!("site[{si}].route[{ri}].paths"),
                    "list path prefixes starting with '/'".into(),
                ));
            }
        }
        if s.challenge.bits > 28 {
            return Err((
                format!("site[{si}].challenge.bits"),
                "at most 28 (each bit doubles the work; 16 is about half a second in a browser)"
                    .into(),
            ));
        }
        if let Some(hc) = &s.health {
            if !hc.path.starts_with('/') {
                return Err((
                    format!("site[{si}].health.path"),
                    "must start with '/'".into(),
                ));
            }
            if hc.rise == 0 || hc.fall == 0 {
                return Err((
                    format!("site[{si}].health"),
                    "rise and fall must be at least 1".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Split `host:port` (with `[v6]:port`), returning the host and the port.
pub fn split_host_port(s: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest.find(']')?;
        let port = rest[end + 1..].strip_prefix(':')?;
        (&rest[..end], port)
    } else {
        let (h, p) = s.rsplit_once(':')?;
        if h.contains(':') {
            return None;
        }
        (h, p)
    };
    if host.is_empty() {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// The configuration of `levee serve --demo`: the edge on `listen`, the admin
/// listener on `admin`, one site in front of the built-in demo origin.
pub fn demo(
    listen: SocketAddr,
    admin: SocketAddr,
    origin: SocketAddr,
    drill_token: &str,
) -> Config {
    let text = format!(
        r#"
[[listener]]
address = "{listen}"

[admin]
address = "{admin}"

[drill]
token = "{drill_token}"

[[site]]
name = "demo"
hosts = ["localhost", "127.0.0.1", "[::1]", "demo.levee.test"]
max_concurrent_per_origin = 64
queue = 64

[[site.origin]]
address = "{origin}"

[site.health]
path = "/healthz"
interval = "2s"

[site.cache]
enabled = true
keep_params = ["q"]
"#
    );
    match parse("demo", &text) {
        Ok(c) => c,
        // The demo text is fixed; a failure here is a bug caught by the unit test.
        Err(e) => unreachable!("built-in demo configuration is invalid: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = r#"
[[listener]]
address = "127.0.0.1:0"

[[site]]
name = "a"
hosts = ["a.test"]
[[site.origin]]
address = "127.0.0.1:3000"
"#;

    #[test]
    fn minimal_config_parses_with_defaults() {
        let c = parse("t.toml", MIN).unwrap();
        assert_eq!(c.listener.len(), 1);
        assert!(c.listener[0].h2c);
        assert_eq!(c.limits.max_connections_per_ip, 256);
        assert_eq!(c.site[0].balance, Balance::RoundRobin);
        assert_eq!(c.http2.max_concurrent_streams, 100);
    }

    #[test]
    fn unknown_key_names_path_and_line() {
        let text = MIN.replace(
            "address = \"127.0.0.1:3000\"",
            "adress = \"127.0.0.1:3000\"",
        );
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "site[0].origin[0].adress");
        assert_eq!(e.line, Some(9), "{e}");
        assert!(e.message.contains("unknown field `adress`"), "{e}");
        assert!(
            e.to_string()
                .starts_with("t.toml:9: site[0].origin[0].adress: "),
            "{e}"
        );
    }

    #[test]
    fn bad_duration_names_path_and_line() {
        let text = format!("{MIN}\n[limits]\nheader_timeout = \"ten seconds\"\n");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "limits.header_timeout");
        assert_eq!(e.line, Some(12), "{e}");
        assert!(e.message.contains("duration"), "{e}");
    }

    #[test]
    fn bad_cidr_is_rejected() {
        let text = format!("{MIN}\n[trust]\nproxies = [\"10.0.0.0/33\"]\n");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "trust.proxies[0]");
        assert!(e.message.contains("prefix length"), "{e}");
    }

    #[test]
    fn validation_errors_are_located() {
        let text = format!(
            "{MIN}\n[[site]]\nname = \"b\"\nhosts = [\"A.test\"]\n[[site.origin]]\naddress = \"x:1\"\n"
        );
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "site[1].hosts");
        assert_eq!(e.line, Some(13), "{e}");
        assert!(e.message.contains("already served by site[0]"), "{e}");

        let text = MIN.replace("127.0.0.1:3000", "no-port");
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "site[0].origin[0].address");
        assert_eq!(e.line, Some(9), "{e}");
    }

    #[test]
    fn routes_and_rate_limits() {
        let text = format!("{MIN}[site.rate_limit]\nper_ip = 100\n[[site.route]]\nname = \"login\"\npaths = [\"/login\"]\nper_ip = 5\nwindow = \"10s\"\n");
        let c = parse("t.toml", &text).unwrap();
        assert_eq!(c.site[0].rate_limit.per_ip, 100);
        assert_eq!(c.site[0].route[0].limit().per_ip, 5);
        let bad = text.replace("per_ip = 5", "per_ipp = 5");
        assert_eq!(
            parse("t.toml", &bad).unwrap_err().path,
            "site[0].route[0].per_ipp"
        );
    }

    #[test]
    fn tls_listener_needs_certificate() {
        let text = MIN.replace(
            "address = \"127.0.0.1:0\"",
            "address = \"127.0.0.1:0\"\ntls = true",
        );
        let e = parse("t.toml", &text).unwrap_err();
        assert_eq!(e.path, "listener[0].tls");
    }

    #[test]
    fn syntax_error_has_line() {
        let e = parse("t.toml", "[[listener]\naddress = 1").unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
    }

    #[test]
    fn demo_config_is_valid() {
        let a: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let c = demo(a, a, a, "tok");
        assert_eq!(c.site[0].hosts[0], "localhost");
        assert_eq!(c.drill.token.as_deref(), Some("tok"));
    }

    #[test]
    fn host_port_split() {
        assert_eq!(split_host_port("a:1"), Some(("a", 1)));
        assert_eq!(split_host_port("[::1]:80"), Some(("::1", 80)));
        assert_eq!(split_host_port("::1:80"), None);
        assert_eq!(split_host_port(":80"), None);
        assert_eq!(split_host_port("a:99999"), None);
    }
}
#[cfg(test)]
mod fuzz_regressions {
    #[test]
    fn missing_value_has_a_message() {
        let e = super::parse("f.toml", "0 = ").unwrap_err();
        assert!(!e.message.is_empty(), "{e:?}");
        assert_eq!(e.line, Some(1));
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn the_documented_example_parses() {
        let text = include_str!("../../../levee.example.toml");
        let c = super::parse("levee.example.toml", text).unwrap();
        assert_eq!(c.site.len(), 2);
        assert_eq!(c.listener.len(), 2);
        assert_eq!(c.site[1].balance, super::Balance::LeastOutstanding);
    }
}
