//! Drill scenarios: the TOML schema, and the built-in scenarios shipped as
//! documented files under `drills/` at the repository root.

use serde::Deserialize;

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub attack: Vec<Attack>,
    #[serde(default)]
    pub legit: Legit,
}

/// What kind of attack traffic a group of bots sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// Complete HTTP/1.1 requests on keep-alive connections.
    Http,
    /// Connections opened and held, nothing sent.
    ConnFlood,
    /// Request heads trickled a header at a time.
    Slowloris,
    /// Request bodies trickled a few bytes at a time.
    SlowPost,
    /// Large responses requested and read very slowly.
    SlowRead,
    /// Request-smuggling shapes and oversized heads.
    Malformed,
    /// HTTP/2 (h2c): streams opened and reset at once (CVE-2023-44487).
    H2RapidReset,
    /// HTTP/2 (h2c): a header block that never ends (CONTINUATION frames).
    H2Continuation,
    /// HTTP/2 (h2c): PING frames as fast as possible.
    H2PingFlood,
    /// Full TLS handshakes, each on a new connection (needs an https:// target).
    TlsHandshake,
}

impl Kind {
    /// Whether the kind can run against an `https://` target.
    pub fn works_over_tls(self) -> bool {
        matches!(self, Kind::Http | Kind::TlsHandshake)
    }
}

/// One group of bots.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attack {
    pub kind: Kind,
    /// Distinct bot addresses (127.x.y.z).
    #[serde(default = "default_sources")]
    pub sources: u32,
    /// Bots per /24: 1 spreads every bot over its own /24 (carpet bombing).
    #[serde(default = "default_per_prefix")]
    pub per_prefix: u32,
    /// Concurrent connections, all bots together.
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// Requests per second, all bots together; 0 = as fast as possible.
    #[serde(default)]
    pub rate: u32,
    #[serde(default = "default_method")]
    pub method: String,
    /// Paths, used in turn.
    #[serde(default = "default_paths")]
    pub paths: Vec<String>,
    /// A body for POST requests.
    #[serde(default)]
    pub body: String,
    /// User-Agents, used in turn (a botnet has few).
    #[serde(default = "default_agents")]
    pub user_agents: Vec<String>,
    /// Send User-Agent before Host (Mirai's header order).
    #[serde(default)]
    pub ua_before_host: bool,
    /// Append a random query string to every request (cache busting).
    #[serde(default)]
    pub cache_bust: bool,
    /// Replay the cookies the edge sets, as bots do.
    #[serde(default = "yes")]
    pub replay_cookies: bool,
    /// Follow same-site redirects, as bots do.
    #[serde(default = "yes")]
    pub follow_redirects: bool,
}

fn default_sources() -> u32 {
    16
}
fn default_per_prefix() -> u32 {
    256
}
fn default_connections() -> u32 {
    64
}
fn default_method() -> String {
    "GET".into()
}
fn default_paths() -> Vec<String> {
    vec!["/".into()]
}
fn default_agents() -> Vec<String> {
    vec!["Mozilla/5.0 (compatible; bot)".into()]
}
fn yes() -> bool {
    true
}

/// Legitimate, browser-like clients alongside the attack.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Legit {
    /// How many (each from its own address).
    #[serde(default = "default_legit")]
    pub clients: u32,
    /// Pause between page views, in milliseconds.
    #[serde(default = "default_think")]
    pub think_ms: u64,
    /// Pages viewed in turn.
    #[serde(default = "default_paths")]
    pub pages: Vec<String>,
    /// Assets fetched after each page.
    #[serde(default = "default_assets")]
    pub assets: Vec<String>,
    /// Staff clients carrying `Authorization: Bearer <staff_token>`.
    #[serde(default)]
    pub staff: u32,
    /// A flash crowd: during the attack phase, more clients arrive, linearly,
    /// until there are `ramp` times `clients` (1 = none arrive).
    #[serde(default = "one")]
    pub ramp: f64,
}

fn one() -> f64 {
    1.0
}

impl Default for Legit {
    fn default() -> Self {
        Legit {
            clients: default_legit(),
            think_ms: default_think(),
            pages: default_paths(),
            assets: default_assets(),
            staff: 0,
            ramp: 1.0,
        }
    }
}

fn default_legit() -> u32 {
    20
}
fn default_think() -> u64 {
    200
}
fn default_assets() -> Vec<String> {
    vec!["/static/app.css".into()]
}

/// Why a scenario could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{file}:{line}: {message}")]
    Parse {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("no built-in scenario {0:?}; built-ins are: {1}")]
    Unknown(String, String),
}

/// The built-in scenarios: `(name, TOML text)`.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "http-flood",
        include_str!("../../../drills/http-flood.toml"),
    ),
    (
        "carpet-bomb",
        include_str!("../../../drills/carpet-bomb.toml"),
    ),
    (
        "cache-bust",
        include_str!("../../../drills/cache-bust.toml"),
    ),
    ("dogpile", include_str!("../../../drills/dogpile.toml")),
    (
        "conn-flood",
        include_str!("../../../drills/conn-flood.toml"),
    ),
    ("slowloris", include_str!("../../../drills/slowloris.toml")),
    ("slow-post", include_str!("../../../drills/slow-post.toml")),
    ("slow-read", include_str!("../../../drills/slow-read.toml")),
    ("malformed", include_str!("../../../drills/malformed.toml")),
    (
        "h2-rapid-reset",
        include_str!("../../../drills/h2-rapid-reset.toml"),
    ),
    (
        "h2-continuation",
        include_str!("../../../drills/h2-continuation.toml"),
    ),
    (
        "h2-ping-flood",
        include_str!("../../../drills/h2-ping-flood.toml"),
    ),
    (
        "tls-handshake-flood",
        include_str!("../../../drills/tls-handshake-flood.toml"),
    ),
    ("mixed", include_str!("../../../drills/mixed.toml")),
    (
        "flash-crowd",
        include_str!("../../../drills/flash-crowd.toml"),
    ),
];

/// Parse a scenario file's text.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
        file: file.to_string(),
        line: e.span().map_or(0, |sp| {
            text[..sp.start.min(text.len())].matches('\n').count() + 1
        }),
        message: e.message().to_string(),
    })?;
    for (i, a) in s.attack.iter().enumerate() {
        let bad = |m: &str| ScenarioError::Invalid {
            file: file.to_string(),
            message: format!("attack[{i}]: {m}"),
        };
        if a.sources == 0 || a.connections == 0 || a.per_prefix == 0 {
            return Err(bad(
                "sources, per_prefix and connections must be at least 1",
            ));
        }
        if a.paths.is_empty() || a.paths.iter().any(|p| !p.starts_with('/')) {
            return Err(bad("paths must be non-empty and start with '/'"));
        }
        if a.user_agents.is_empty() {
            return Err(bad("list at least one user agent"));
        }
    }
    if !(1.0..=100.0).contains(&s.legit.ramp) {
        return Err(ScenarioError::Invalid {
            file: file.to_string(),
            message: "legit.ramp must be between 1 and 100".into(),
        });
    }
    if s.legit.pages.iter().any(|p| !p.starts_with('/')) {
        return Err(ScenarioError::Invalid {
            file: file.to_string(),
            message: "legit.pages must start with '/'".into(),
        });
    }
    Ok(s)
}

/// A built-in scenario by name.
pub fn built_in(name: &str) -> Result<Scenario, ScenarioError> {
    match BUILT_IN.iter().find(|(n, _)| *n == name) {
        Some((n, text)) => parse(&format!("drills/{n}.toml"), text),
        None => Err(ScenarioError::Unknown(
            name.to_string(),
            BUILT_IN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_parses() {
        for (name, _) in BUILT_IN {
            let s = built_in(name).unwrap();
            assert_eq!(s.name, *name);
            assert!(!s.description.is_empty(), "{name} needs a description");
        }
        assert!(matches!(built_in("nope"), Err(ScenarioError::Unknown(..))));
    }

    #[test]
    fn bad_files_name_the_problem() {
        let e = parse("x.toml", "name = \"x\"\n[[attack]]\nkind = \"tsunami\"\n").unwrap_err();
        assert!(e.to_string().starts_with("x.toml:3:"), "{e}");
        let e = parse(
            "x.toml",
            "name = \"x\"\n[[attack]]\nkind = \"http\"\npaths = [\"nope\"]\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("attack[0]"), "{e}");
    }
}
