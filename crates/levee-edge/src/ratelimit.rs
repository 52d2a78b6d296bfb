//! Request-rate limits per client address, per /24 or /64 prefix and in
//! total, for a site and for its route classes, counted in fixed memory
//! (`levee_limits::rate`). Over a limit: 429 with `Retry-After`.
//!
//! In a fleet every limiter is shared (`RateLimiter::shared`): each is named
//! by a scope (`site/ip`, `/login/prefix`, …) under which its counts travel
//! and its totals come back; windows are aligned on the wall clock, so every
//! edge counts the same windows.

use crate::metrics::Reason;
use levee_limits::fleet::{CounterDelta, CounterTotal};
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
    pub(crate) fn new(l: &levee_config::RateLimit, seeds: [u64; 4], fleet: bool) -> Limits {
        let window = l
            .window
            .map_or(1000, |w| w.as_duration().as_millis().max(1) as u64);
        let mk = |n: u32, width: u32| {
            (n > 0).then(|| {
                let r = RateLimiter::new(n, window, width, seeds);
                if fleet {
                    r.shared()
                } else {
                    r
                }
            })
        };
        Limits {
            ip: mk(l.per_ip, 16),
            prefix: mk(l.per_prefix, 16),
            total: mk(l.total, 4),
        }
    }

    fn is_empty(&self) -> bool {
        self.ip.is_none() && self.prefix.is_none() && self.total.is_none()
    }

    fn each(&self) -> [(&'static str, Option<&RateLimiter>); 3] {
        [
            ("ip", self.ip.as_ref()),
            ("prefix", self.prefix.as_ref()),
            ("total", self.total.as_ref()),
        ]
    }

    /// Count the request; the first limit it is over, with the Retry-After
    /// in ms. Per-client limits are multiplied by `factor`, all of them by
    /// `share` (a fleet member on its own enforces its share).
    fn check(&self, ip: IpAddr, now_ms: u64, factor: f64, share: f64) -> Option<(Reason, u64)> {
        let over = |l: &Option<RateLimiter>, key: u128, r: Reason| match l.as_ref().map(|l| {
            if r == Reason::RateLimitTotal {
                l.check_scaled(key, now_ms, share)
            } else {
                l.check_scaled(key, now_ms, factor * share)
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

    pub(crate) fn new(s: &levee_config::Site, seeds: [u64; 4], fleet: bool) -> SiteLimits {
        SiteLimits {
            made_for: Self::key_of(s),
            site: Limits::new(&s.rate_limit, seeds, fleet),
            routes: s
                .route
                .iter()
                .map(|r| (r.paths.clone(), Limits::new(&r.limit(), seeds, fleet)))
                .collect(),
        }
    }

    /// Whether any limit is configured (so that the request path skips all of this otherwise).
    pub(crate) fn active(&self) -> bool {
        !self.site.is_empty() || self.routes.iter().any(|(_, l)| !l.is_empty())
    }

    /// Count a request for `path` from `ip`; `Some` if it is over a limit.
    /// Per-client limits are multiplied by `factor` (1.0 in normal mode),
    /// every limit by `share` (1.0 but for a fleet member on its own).
    /// `path` is the normalised path; a route's prefix `/api/` also matches
    /// `/api`, in any case (`/LOGIN` counts against `/login`'s limit: on an
    /// origin that ignores case it is the same page, and on one that does
    /// not, limiting a 404 harms nobody).
    /// `now_ms` is wall-clock time (windows shared by a fleet).
    pub(crate) fn check(
        &self,
        path: &str,
        ip: IpAddr,
        now_ms: u64,
        factor: f64,
        share: f64,
    ) -> Option<(Reason, u64)> {
        let route = self.routes.iter().find(|(prefixes, _)| {
            prefixes
                .iter()
                .any(|p| levee_http::target::under_any_case(path, p))
        });
        if let Some(hit) = route.and_then(|(_, l)| l.check(ip, now_ms, factor, share)) {
            return Some(hit);
        }
        self.site.check(ip, now_ms, factor, share)
    }

    /// Every limiter with its fleet scope (`site/ip`, `ROUTE/prefix`, …).
    fn scoped(&self) -> impl Iterator<Item = (String, &RateLimiter)> + '_ {
        let site = self
            .site
            .each()
            .into_iter()
            .filter_map(|(k, l)| Some((format!("site/{k}"), l?)));
        let routes = self.routes.iter().flat_map(|(paths, l)| {
            let name = paths.first().cloned().unwrap_or_default();
            l.each()
                .into_iter()
                .filter_map(move |(k, r)| Some((format!("{name}/{k}"), r?)))
        });
        site.chain(routes)
    }

    /// The counts to send to the fleet since the last call.
    pub(crate) fn take_counts(&self, site: &str, out: &mut Vec<CounterDelta>) {
        for (scope, l) in self.scoped() {
            for p in l.take_pending() {
                out.push(CounterDelta {
                    scope: scope.clone(),
                    site: site.to_string(),
                    window_ms: l.window_ms(),
                    key: p.key,
                    window: p.window,
                    count: p.count,
                });
            }
        }
    }

    /// What the rest of the fleet counted (totals of other scopes are ignored).
    pub(crate) fn apply_totals(&self, totals: &[&CounterTotal]) {
        for (scope, l) in self.scoped() {
            for t in totals.iter().filter(|t| t.scope == scope) {
                l.set_remote(t.key, t.window, t.others);
            }
        }
    }

    /// Keys not sent to the fleet because a round's table was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.scoped().map(|(_, l)| l.dropped()).sum()
    }

    /// Live edges in the fleet (sets how early a key's counts are sent).
    pub(crate) fn set_edges(&self, n: u32) {
        for (_, l) in self.scoped() {
            l.set_edges(n);
        }
    }
}
