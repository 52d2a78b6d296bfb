//! Request-rate limits per client address, per /24 or /64 prefix and in
//! total, for a site and for its route classes, counted in fixed memory
//! (`levee_limits::rate`). Over a limit: 429 with `Retry-After`.

use crate::metrics::Reason;
use levee_limits::rate::{RateDecision, RateLimiter};
use std::net::IpAddr;

/// One set of limits (a site's or a route's).
#[derive(Debug)]
pub(crate) struct Limits {
    ip: Option<RateLimiter>,
    prefix: Option<RateLimiter>,
    total: Option<RateLimiter>,
}

pub(crate) fn ip_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V6(v6) => u128::from(v6),
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
    }
}

impl Limits {
    pub(crate) fn new(l: &levee_config::RateLimit, seeds: [u64; 4]) -> Limits {
        let window = l
            .window
            .map_or(1000, |w| w.as_duration().as_millis().max(1) as u64);
        let mk = |n: u32, width: u32| (n > 0).then(|| RateLimiter::new(n, window, width, seeds));
        Limits {
            ip: mk(l.per_ip, 16),
            prefix: mk(l.per_prefix, 16),
            total: mk(l.total, 4),
        }
    }

    fn is_empty(&self) -> bool {
        self.ip.is_none() && self.prefix.is_none() && self.total.is_none()
    }

    /// Count the request; the first limit it is over, with the Retry-After in ms.
    fn check(&self, ip: IpAddr, now_ms: u64, factor: f64) -> Option<(Reason, u64)> {
        let over = |l: &Option<RateLimiter>, key: u128, r: Reason| match l.as_ref().map(|l| {
            if r == Reason::RateLimitTotal {
                l.check(key, now_ms)
            } else {
                l.check_scaled(key, now_ms, factor)
            }
        }) {
            Some(RateDecision::Limit { retry_after_ms }) => Some((r, retry_after_ms)),
            _ => None,
        };
        let (p, v6) = levee_limits::prefix_of(ip);
        over(&self.ip, ip_key(ip), Reason::RateLimitIp)
            .or_else(|| {
                over(
                    &self.prefix,
                    p ^ (u128::from(v6) << 127),
                    Reason::RateLimitPrefix,
                )
            })
            .or_else(|| over(&self.total, 0, Reason::RateLimitTotal))
    }
}

/// A site's limits and its route classes' (first matching route wins).
#[derive(Debug)]
pub(crate) struct SiteLimits {
    site: Limits,
    routes: Vec<(Vec<String>, Limits)>,
    /// The configuration the counters were made for: a reload that keeps it
    /// keeps the counters (a client over its limit stays over it).
    made_for: String,
}

impl SiteLimits {
    /// The configuration of a site's limits, for comparing across reloads.
    pub(crate) fn key_of(s: &levee_config::Site) -> String {
        format!("{:?} {:?}", s.rate_limit, s.route)
    }

    /// Whether these counters were made for `s`'s limits.
    pub(crate) fn made_for(&self, s: &levee_config::Site) -> bool {
        self.made_for == Self::key_of(s)
    }

    pub(crate) fn new(s: &levee_config::Site, seeds: [u64; 4]) -> SiteLimits {
        SiteLimits {
            made_for: Self::key_of(s),
            site: Limits::new(&s.rate_limit, seeds),
            routes: s
                .route
                .iter()
                .map(|r| (r.paths.clone(), Limits::new(&r.limit(), seeds)))
                .collect(),
        }
    }

    /// Whether any limit is configured (so that the request path skips all of this otherwise).
    pub(crate) fn active(&self) -> bool {
        !self.site.is_empty() || self.routes.iter().any(|(_, l)| !l.is_empty())
    }

    /// Count a request for `path` from `ip`; `Some` if it is over a limit.
    /// Per-client limits are multiplied by `factor` (1.0 in normal mode).
    /// `path` is the normalised path; a route's prefix `/api/` also matches `/api`.
    pub(crate) fn check(
        &self,
        path: &str,
        ip: IpAddr,
        now_ms: u64,
        factor: f64,
    ) -> Option<(Reason, u64)> {
        let route = self
            .routes
            .iter()
            .find(|(prefixes, _)| prefixes.iter().any(|p| levee_http::target::under(path, p)));
        if let Some(hit) = route.and_then(|(_, l)| l.check(ip, now_ms, factor)) {
            return Some(hit);
        }
        self.site.check(ip, now_ms, factor)
    }
}
