//! A site's incident tally: what each request ended as (fed by the
//! pipeline's one record), origin latency, and while an incident is open
//! the heaviest source prefixes with their blocked counts (bounded).
//! `incidents.rs` takes it once a second.

use crate::accesslog::Verdict;
use crate::answer::Why;
use crate::metrics::Reason;
use levee_incident::{Second, Source};
use levee_limits::rate::TopK;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Latency buckets: `[2^i, 2^(i+1))` microseconds.
const BUCKETS: usize = 32;
/// Solve-time buckets.
const SOLVES: usize = levee_incident::SOLVE_BUCKETS_S.len() + 1;
/// Prefixes kept per site while an incident is open (space-saving).
const TOP: usize = 256;

/// A site's counts since the last second (kept across reloads by site name).
#[derive(Debug)]
pub(crate) struct Tally {
    counts: [AtomicU64; 8],
    e5xx: AtomicU64,
    /// Requests left out of the prefix ranking because its table was busy.
    pub(crate) skipped: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    /// Challenges solved, by time taken (`levee_incident::SOLVE_BUCKETS_S`, and longer).
    solves: [AtomicU64; SOLVES],
    /// While an incident is open: requests and blocked requests per prefix.
    recording: AtomicBool,
    top: Mutex<(TopK, HashMap<u128, u64>)>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            counts: Default::default(),
            e5xx: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            solves: std::array::from_fn(|_| AtomicU64::new(0)),
            recording: AtomicBool::new(false),
            top: Mutex::new((TopK::new(TOP), HashMap::new())),
        }
    }
}

/// The outcome a record counts as (index into `levee_incident::OUTCOMES`).
fn outcome(verdict: Verdict, why: Why) -> usize {
    match (verdict, why) {
        (_, Why::Note("cache_hit" | "cache_stale")) => 1,
        (_, Why::Note("challenge_solved")) => 3,
        (
            _,
            Why::Defense(
                Reason::RateLimitIp
                | Reason::RateLimitPrefix
                | Reason::RateLimitTotal
                | Reason::RuleRateLimit
                | Reason::InFlightCapIp
                | Reason::InFlightCapPrefix,
            ),
        ) => 4,
        (
            _,
            Why::Defense(
                Reason::BodyTooSlow
                | Reason::SendTooSlow
                | Reason::HeaderTimeout
                | Reason::IdleTimeout,
            ),
        ) => 7,
        (Verdict::Challenge, _) => 2,
        (Verdict::Block, _) => 5,
        (Verdict::Shed, _) => 6,
        (Verdict::Allow, _) => 0,
    }
}

fn key_of(ip: IpAddr) -> u128 {
    let (p, v6) = levee_limits::prefix_of(ip);
    p ^ (u128::from(v6) << 127)
}

fn prefix_text(key: u128) -> String {
    let v6 = key >> 127 == 1;
    let bits = key & !(1u128 << 127);
    if v6 {
        format!("{}/64", std::net::Ipv6Addr::from(bits))
    } else {
        format!("{}/24", std::net::Ipv4Addr::from(bits as u32))
    }
}

impl Tally {
    /// Count one finished request of the site.
    pub(crate) fn record(
        &self,
        verdict: Verdict,
        why: Why,
        status: u16,
        origin_us: Option<u64>,
        client: IpAddr,
    ) {
        let o = outcome(verdict, why);
        self.counts[o].fetch_add(1, Ordering::Relaxed);
        if status >= 500 && o == 0 {
            self.e5xx.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(us) = origin_us {
            let b = (63 - us.max(1).leading_zeros() as usize).min(BUCKETS - 1);
            self.latency[b].fetch_add(1, Ordering::Relaxed);
        }
        if self.recording.load(Ordering::Relaxed) {
            let k = key_of(client);
            // A worker never waits here: when another holds the table, this
            // request is left out of the ranking (counted in `skipped`).
            let Ok(mut t) = self.top.try_lock() else {
                self.skipped.fetch_add(1, Ordering::Relaxed);
                return;
            };
            t.0.add(k, 1);
            if o == 5 && t.1.len() < TOP * 4 {
                *t.1.entry(k).or_insert(0) += 1;
            } else if o == 5 {
                if let Some(n) = t.1.get_mut(&k) {
                    *n += 1;
                }
            }
        }
    }

    /// A challenge of the site solved `secs` after it was issued.
    pub(crate) fn solved_after(&self, secs: u64) {
        let i = levee_incident::SOLVE_BUCKETS_S
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(SOLVES - 1);
        self.solves[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts since the last call, as the second starting at `t`.
    pub(crate) fn take(&self, t: u64, conns: u64) -> Second {
        let mut s = Second {
            t,
            span_s: 1,
            conns,
            ..Second::default()
        };
        for (c, a) in s.counts.iter_mut().zip(&self.counts) {
            *c = a.swap(0, Ordering::Relaxed);
        }
        s.e5xx = self.e5xx.swap(0, Ordering::Relaxed);
        let hist: Vec<u64> = self
            .latency
            .iter()
            .map(|a| a.swap(0, Ordering::Relaxed))
            .collect();
        let solves: Vec<u64> = self
            .solves
            .iter()
            .map(|a| a.swap(0, Ordering::Relaxed))
            .collect();
        if solves.iter().any(|&n| n > 0) {
            s.solves = solves;
        }
        s.p50_ms = quantile(&hist, 0.5);
        s.p99_ms = quantile(&hist, 0.99);
        s
    }

    /// The heaviest prefixes so far, with their blocked counts.
    pub(crate) fn sources(&self) -> Vec<Source> {
        let t = self.top.lock().unwrap_or_else(PoisonError::into_inner);
        t.0.top(20)
            .into_iter()
            .map(|(k, n, _)| Source {
                prefix: prefix_text(k),
                requests: n,
                blocked: t.1.get(&k).copied().unwrap_or(0),
            })
            .collect()
    }

    pub(crate) fn is_recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    /// Start (afresh) or stop keeping prefixes.
    pub(crate) fn start_recording(&self, on: bool) {
        if on {
            let mut t = self.top.lock().unwrap_or_else(PoisonError::into_inner);
            *t = (TopK::new(TOP), HashMap::new());
        }
        self.recording.store(on, Ordering::Relaxed);
    }
}

/// A quantile of a log2 histogram, in ms (each bucket read at 1.5 × its floor).
fn quantile(hist: &[u64], q: f64) -> f64 {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let want = ((n as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in hist.iter().enumerate() {
        seen += c;
        if seen >= want {
            return (1u64 << i) as f64 * 1.5 / 1000.0;
        }
    }
    0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_quantiles() {
        assert_eq!(outcome(Verdict::Allow, Why::Plain), 0);
        assert_eq!(outcome(Verdict::Allow, Why::Note("cache_hit")), 1);
        assert_eq!(
            outcome(Verdict::Challenge, Why::Defense(Reason::Challenge)),
            2
        );
        assert_eq!(
            outcome(Verdict::Block, Why::Defense(Reason::RateLimitIp)),
            4
        );
        assert_eq!(outcome(Verdict::Block, Why::Defense(Reason::RuleBlock)), 5);
        assert_eq!(outcome(Verdict::Shed, Why::Defense(Reason::OriginBusy)), 6);
        assert_eq!(
            outcome(Verdict::Block, Why::Defense(Reason::SendTooSlow)),
            7
        );
        let mut h = [0u64; BUCKETS];
        h[10] = 99; // ~1.5 ms
        h[20] = 1; // ~1.5 s
        assert_eq!(quantile(&h, 0.5), 1.536);
        assert_eq!(quantile(&h, 0.99), 1.536);
        assert!(quantile(&h, 1.0) > 1000.0);
        assert_eq!(quantile(&[0; BUCKETS], 0.5), 0.0);
    }

    #[test]
    fn prefixes_print() {
        assert_eq!(
            prefix_text(key_of("192.0.2.77".parse().unwrap())),
            "192.0.2.0/24"
        );
        assert_eq!(
            prefix_text(key_of("2001:db8::1".parse().unwrap())),
            "2001:db8::/64"
        );
    }

    #[test]
    fn the_tally_counts_blocked_prefixes_only_while_recording() {
        let t = Tally::default();
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        t.record(
            Verdict::Block,
            Why::Defense(Reason::RuleBlock),
            403,
            None,
            ip,
        );
        assert!(t.sources().is_empty());
        t.start_recording(true);
        t.record(
            Verdict::Block,
            Why::Defense(Reason::RuleBlock),
            403,
            None,
            ip,
        );
        t.record(
            Verdict::Block,
            Why::Defense(Reason::RateLimitIp),
            429,
            None,
            ip,
        );
        t.record(Verdict::Allow, Why::Plain, 200, Some(1500), ip);
        let s = t.sources();
        assert_eq!(s[0].requests, 3);
        assert_eq!(s[0].blocked, 1, "a rate limit is not a block");
        let sec = t.take(7, 3);
        assert_eq!(sec.counts, [1, 0, 0, 0, 1, 2, 0, 0]);
        assert!(sec.p99_ms > 1.0 && sec.p99_ms < 2.5);
        assert_eq!(t.take(8, 0).total(), 0);
    }
}
