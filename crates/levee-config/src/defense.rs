//! `[site.defense]` (adaptive defense: detection, modes, rules, priority
//! admission) and `[site.cache]` (micro-cache and serve-stale).

use crate::Dur;
use serde::Deserialize;

/// What a derived rule does to the requests it matches.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Challenge browsers; clients that cannot run JavaScript are refused.
    #[default]
    Challenge,
    /// Refuse (403) and close the connection.
    Block,
    /// Hold matching clients to `elevated_per_ip` requests per window.
    RateLimit,
}

/// A mode's name (for pinning in configuration).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModeName {
    Normal,
    Elevated,
    UnderAttack,
}

/// Adaptive defense for a site (`[site.defense]`). On by default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defense {
    /// Detection, modes and rules (`false`: static defenses only).
    pub enabled: bool,
    /// How often the detector looks at the traffic.
    pub tick: Dur,
    /// Normal traffic seen before derived rules are trusted.
    pub learn: Dur,
    /// After learning, the baseline follows normal traffic with this time
    /// constant (slow, so that a slowly ramping attack does not become normal).
    pub baseline_window: Dur,
    /// Anomalous: request rate above `rate_factor` × baseline…
    pub rate_factor: f64,
    /// …and above this many requests per second.
    pub min_rate: f64,
    /// A signature value must be at least this share of the traffic…
    pub min_share: f64,
    /// …this many times its share of normal traffic…
    pub min_lift: f64,
    /// …and the expected legitimate share of what it matches at most this.
    pub max_collateral: f64,
    /// Calm time before a mode steps down (hysteresis).
    pub cooldown: Dur,
    /// A rule matching (almost) nothing for this long expires.
    pub rule_idle: Dur,
    pub rule_action: RuleAction,
    /// At most this many rules at once.
    pub max_rules: u32,
    /// A client matching block rules this many times is blocked at accept
    /// (and in the packet filter) for `auto_block_ttl`; 0 = never.
    pub auto_block_after: u32,
    pub auto_block_ttl: Dur,
    /// Start in (and stay in) this mode; the admin API can change it.
    pub pin: Option<ModeName>,
    /// Per-client rate limits are multiplied by these in elevated and under-attack modes.
    pub elevated_rate_factor: f64,
    pub attack_rate_factor: f64,
    /// Adaptive origin concurrency: never below this many slots.
    pub min_concurrency: u32,
    /// Requests sampled per second for signatures (the rest are counted only).
    pub samples_per_second: u32,
    /// A client seen twice at least this long apart counts as returning
    /// (clients are only recorded in normal mode, so: seen before the attack;
    /// IPv6 clients by their /64).
    pub returning_after: Dur,
    /// …and is forgotten after this long.
    pub returning_ttl: Dur,
    /// Requests matched by a rule wait this long before their answer (the
    /// connection or stream is held, so a bot's next request comes later);
    /// 0 = answer at once.
    pub tarpit: Dur,
}

impl Default for Defense {
    fn default() -> Self {
        Defense {
            enabled: true,
            tick: Dur::millis(100),
            learn: Dur::secs(10),
            baseline_window: Dur::secs(300),
            rate_factor: 3.0,
            min_rate: 50.0,
            min_share: 0.1,
            min_lift: 4.0,
            max_collateral: 0.01,
            cooldown: Dur::secs(30),
            rule_idle: Dur::secs(10),
            rule_action: RuleAction::Challenge,
            max_rules: 32,
            auto_block_after: 0,
            auto_block_ttl: Dur::secs(300),
            pin: None,
            elevated_rate_factor: 0.5,
            attack_rate_factor: 0.25,
            min_concurrency: 4,
            samples_per_second: 4000,
            returning_after: Dur::secs(600),
            returning_ttl: Dur::secs(86_400),
            tarpit: Dur::millis(250),
        }
    }
}

/// When junk query parameters are dropped from cache keys.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum IgnoreQuery {
    Never,
    /// Only while the site is under attack (the default).
    #[default]
    UnderAttack,
    Always,
}

/// Micro-cache (`[site.cache]`). Off unless `enabled = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cache {
    pub enabled: bool,
    /// Freshness of a response without `Cache-Control` (and the most any is kept fresh).
    pub ttl: Dur,
    /// Cache responses without `Cache-Control: max-age`/`s-maxage` (for `ttl`).
    pub cache_unmarked: bool,
    /// How long past freshness a copy may be served when the origin is slow,
    /// failing or saturated.
    pub stale: Dur,
    /// A stale copy is served after waiting this long for the origin.
    pub stale_after: Dur,
    /// Responses larger than this are not cached.
    pub max_object: crate::ByteSize,
    /// All entries together, at most.
    pub max_bytes: crate::ByteSize,
    pub max_entries: u32,
    /// Query parameters that select content (kept in the key when junk is dropped).
    pub keep_params: Vec<String>,
    pub ignore_query: IgnoreQuery,
    /// Request fields that carry credentials: a request with any of them is
    /// never answered from, nor stored in, the cache (on top of
    /// `Authorization`, `Proxy-Authorization`, `X-Api-Key`, `X-Auth-Token`,
    /// `X-Access-Token`, `X-CSRF-Token` and cookies other than the clearance).
    pub bypass_headers: Vec<String>,
}

impl Default for Cache {
    fn default() -> Self {
        Cache {
            enabled: false,
            ttl: Dur::secs(1),
            cache_unmarked: true,
            stale: Dur::secs(60),
            stale_after: Dur::millis(1500),
            max_object: crate::ByteSize(1 << 20),
            max_bytes: crate::ByteSize(64 << 20),
            max_entries: 10_000,
            keep_params: Vec::new(),
            ignore_query: IgnoreQuery::UnderAttack,
            bypass_headers: Vec::new(),
        }
    }
}

/// Parse a CIDR list file: one address or network per line, `#` comments,
/// blank lines ignored. Errors name `file:line`.
pub fn parse_cidr_list(text: &str, file: &str) -> Result<Vec<crate::Cidr>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.split('#').next().unwrap_or("").trim();
        if l.is_empty() {
            continue;
        }
        match l.parse::<crate::Cidr>() {
            Ok(c) => out.push(c),
            Err(e) => return Err(format!("{file}:{}: {l:?}: {e}", i + 1)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_lists() {
        let v = parse_cidr_list(
            "# bad networks\n10.0.0.0/8\n\n192.0.2.1 # one host\n2001:db8::/32\n",
            "f",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        let e = parse_cidr_list("10.0.0.0/8\nnot-an-ip\n", "lists/block.txt").unwrap_err();
        assert!(e.starts_with("lists/block.txt:2: \"not-an-ip\""), "{e}");
    }
}
