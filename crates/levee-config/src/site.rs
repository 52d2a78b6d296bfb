//! `[[site]]`: a protected site, its origins, health checks, challenge policy, rate limits and route classes.

use crate::{ByteSize, Cache, Cidr, Defense, Dur};
use serde::Deserialize;
use std::path::PathBuf;

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
    /// What a browser over a limit gets (site-wide; `challenge` by default):
    /// `challenge`, the interstitial for an HTML GET without a clearance
    /// (a cleared browser has 4x the limits before a `429`), or `refuse`,
    /// always `429`.
    pub over: OverLimit,
}

/// What a browser over a request-rate limit gets.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum OverLimit {
    #[default]
    Challenge,
    Refuse,
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
    /// The routes serve personal data (never cached; `levee hunt --config`
    /// watches them for bulk access).
    #[serde(default)]
    pub personal: bool,
    /// Special categories of personal data (GDPR Art. 9) the routes reveal,
    /// e.g. `["political_opinions"]`; implies `personal`.
    #[serde(default)]
    pub special: Vec<String>,
    /// The routes export data in bulk (never cached; any 2xx without a login is a finding).
    #[serde(default)]
    pub export: bool,
    /// The routes authenticate (a successful POST means the client logged in).
    #[serde(default)]
    pub login: bool,
    /// The routes administer the site (never cached; watched out of hours).
    #[serde(default)]
    pub admin: bool,
}

/// The special categories of personal data (GDPR / UK GDPR Art. 9).
pub const SPECIAL_CATEGORIES: [&str; 8] = [
    "racial_or_ethnic_origin",
    "political_opinions",
    "religious_or_philosophical_beliefs",
    "trade_union_membership",
    "genetic",
    "biometric",
    "health",
    "sex_life_or_orientation",
];

impl Route {
    /// Whether the routes carry personal data (tagged, or a special category).
    pub fn is_personal(&self) -> bool {
        self.personal || !self.special.is_empty()
    }

    /// Whether the edge must never cache these routes' answers.
    pub fn private(&self) -> bool {
        self.is_personal() || self.export || self.admin || self.login
    }

    /// The route's limits.
    pub fn limit(&self) -> RateLimit {
        RateLimit {
            per_ip: self.per_ip,
            per_prefix: self.per_prefix,
            total: self.total,
            window: self.window,
            over: OverLimit::default(),
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
    /// The live egress view of routes tagged `personal` or `export`
    /// (`[site.egress]`).
    #[serde(default)]
    pub egress: Egress,
}

/// When one client's egress from the site's personal-data routes (tagged
/// `personal`, `special` or `export`) is reported as an outlier: over
/// `alert_bytes` or `alert_records` (2xx answers) within the sliding
/// `window`, and holding at least `alert_share` of that window's total.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Egress {
    pub window: Dur,
    pub alert_bytes: ByteSize,
    pub alert_records: u32,
    /// 0–1.
    pub alert_share: f64,
}

impl Default for Egress {
    fn default() -> Self {
        Egress {
            window: Dur::secs(600),
            alert_bytes: ByteSize(20 << 20),
            alert_records: 500,
            alert_share: 0.2,
        }
    }
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
