//! What a drill measured: a per-second timeline of counters (fixed size,
//! indexed by the second since the drill started) and the summary computed
//! from it. Pure: the caller says which second a count belongs to.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// A counter in the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Field {
    /// Attack requests (or connections, for connection-level attacks) sent.
    AttackSent,
    /// Attack requests answered 2xx/3xx: they reached the origin (or a cache).
    AttackPassed,
    /// Refused by the edge (4xx).
    AttackBlocked,
    /// Shed by the edge (503).
    AttackShed,
    /// Answered with a challenge.
    AttackChallenged,
    /// Connection closed or reset by the edge before an answer.
    AttackCut,
    /// Legitimate requests that succeeded.
    LegitOk,
    /// Legitimate requests that failed (error status, reset, timeout).
    LegitFailed,
    /// Requests the origin received (when the drill can see the origin).
    OriginRequests,
    /// Requests in progress at the origin, sampled (a gauge: the second's maximum).
    OriginInFlight,
    /// Challenge pages legitimate clients met (and solved).
    LegitChallenged,
    /// Legitimate requests shed (503).
    LegitShed,
    /// Legitimate requests refused (403, 429).
    LegitBlocked,
}

pub const FIELDS: usize = 13;

const NAMES: [&str; FIELDS] = [
    "attack_sent",
    "attack_passed",
    "attack_blocked",
    "attack_shed",
    "attack_challenged",
    "attack_cut",
    "legit_ok",
    "legit_failed",
    "origin_requests",
    "origin_in_flight",
    "legit_challenged",
    "legit_shed",
    "legit_blocked",
];

/// Per-second counters for a drill of known maximum length.
#[derive(Debug)]
pub struct Timeline {
    secs: Vec<[AtomicU64; FIELDS]>,
}

impl Timeline {
    /// Room for `seconds` seconds (later counts land in the last second).
    pub fn new(seconds: usize) -> Self {
        Timeline {
            secs: (0..seconds.max(1)).map(|_| Default::default()).collect(),
        }
    }

    pub fn add(&self, sec: usize, f: Field, n: u64) {
        let i = sec.min(self.secs.len() - 1);
        self.secs[i][f as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// Record a gauge: keep the largest value seen in that second.
    pub fn max(&self, sec: usize, f: Field, v: u64) {
        let i = sec.min(self.secs.len() - 1);
        self.secs[i][f as usize].fetch_max(v, Ordering::Relaxed);
    }

    pub fn get(&self, sec: usize, f: Field) -> u64 {
        self.secs
            .get(sec)
            .map_or(0, |s| s[f as usize].load(Ordering::Relaxed))
    }

    pub fn len(&self) -> usize {
        self.secs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secs.is_empty()
    }

    pub fn total(&self, f: Field) -> u64 {
        (0..self.secs.len()).map(|s| self.get(s, f)).sum()
    }

    /// The timeline as rows of named counters, seconds `0..upto`.
    pub fn rows(&self, upto: usize) -> Vec<Second> {
        (0..upto.min(self.secs.len()))
            .map(|s| Second {
                second: s as u64,
                counts: NAMES
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (n.to_string(), self.secs[s][i].load(Ordering::Relaxed)))
                    .collect(),
            })
            .collect()
    }
}

/// One second of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    pub second: u64,
    #[serde(flatten)]
    pub counts: std::collections::BTreeMap<String, u64>,
}

/// Seconds from `attack_start` until at least 90% of the attack requests of
/// a second were stopped before the origin (blocked, shed, challenged or
/// cut), or `None` if that never happened.
pub fn time_to_mitigate(t: &Timeline, attack_start: usize, upto: usize) -> Option<u64> {
    (attack_start..upto.min(t.len())).find_map(|s| {
        let sent = t.get(s, Field::AttackSent);
        let passed = t.get(s, Field::AttackPassed);
        (sent > 0 && passed * 10 <= sent).then(|| (s - attack_start) as u64)
    })
}

/// Classify an HTTP status seen by an attack client.
pub fn classify(status: u16, challenge: bool) -> Field {
    if challenge {
        return Field::AttackChallenged;
    }
    match status {
        200..=399 => Field::AttackPassed,
        503 => Field::AttackShed,
        _ => Field::AttackBlocked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_counts_and_clamps() {
        let t = Timeline::new(3);
        t.add(0, Field::AttackSent, 5);
        t.add(9, Field::AttackSent, 1);
        assert_eq!(t.get(2, Field::AttackSent), 1);
        assert_eq!(t.total(Field::AttackSent), 6);
        let rows = t.rows(3);
        assert_eq!(rows[0].counts["attack_sent"], 5);
    }

    #[test]
    fn mitigation_time() {
        let t = Timeline::new(10);
        for s in 0..10 {
            t.add(s, Field::AttackSent, 100);
        }
        t.add(1, Field::AttackPassed, 100);
        t.add(2, Field::AttackPassed, 50);
        t.add(3, Field::AttackPassed, 10);
        assert_eq!(time_to_mitigate(&t, 1, 10), Some(2));
        assert_eq!(time_to_mitigate(&t, 1, 3), None);
    }

    #[test]
    fn statuses() {
        assert_eq!(classify(200, false), Field::AttackPassed);
        assert_eq!(classify(302, false), Field::AttackPassed);
        assert_eq!(classify(429, false), Field::AttackBlocked);
        assert_eq!(classify(503, false), Field::AttackShed);
        assert_eq!(classify(200, true), Field::AttackChallenged);
    }
}
