//! Detection without a baseline: on an edge switched on in the middle of a
//! flood, the tick's own sample is split into a *suspect* part and a *clean*
//! part, and the clean part stands in for the baseline the edge never had.
//!
//! A sampled request is suspect when its client is a heavy hitter relative
//! to the population (its share of the sample is many times the median
//! client's, and its own rate is high), or when its `User-Agent` claims a
//! browser its other traits contradict, or names a tool (`browser`).
//! Clients with a verified clearance are never suspect. A flood is then
//! recognised when most of the sample is suspect and comes from several
//! clients; rules are the feature values that cover the suspect part while
//! (almost) absent from the clean part. A crowd of real browsers has no
//! suspect part, so it never gets a rule this way.
//!
//! The clean part also bootstraps the baseline while the site is not in
//! `normal` mode (`Detector::tick`), so that an edge started under attack
//! learns from the traffic it judged legitimate and, in time, detects as an
//! edge with a learned baseline does.

use crate::features::{Dim, Keys};
use std::collections::HashMap;

/// At most this many sampled requests are kept per tick.
pub(crate) const SAMPLE_CAP: usize = 4096;

/// Who sent a sampled request, as the edge judged it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Who {
    /// The client (an address, or an IPv6 /64), hashed; 0 when unknown.
    pub client: u64,
    /// Its traits contradict its `User-Agent`, or it names a tool.
    pub suspect: bool,
    /// It holds a verified clearance (or is staff): legitimate by proof.
    pub trusted: bool,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub keys: Keys,
    pub who: Who,
}

/// Tuning of the population-relative detector.
#[derive(Debug, Clone)]
pub struct ColdParams {
    /// A heavy hitter has at least this many times the median client's samples…
    pub heavy_factor: f64,
    /// …and at least this rate (requests per second, estimated).
    pub heavy_min_rate: f64,
    /// A flood: at least this share of the sample is suspect…
    pub min_suspect_share: f64,
    /// …from at least this many distinct clients.
    pub min_suspect_clients: usize,
    /// A rule's value may be at most this share of the clean sample.
    pub max_clean_share: f64,
}

impl Default for ColdParams {
    fn default() -> Self {
        ColdParams {
            heavy_factor: 8.0,
            heavy_min_rate: 5.0,
            min_suspect_share: 0.5,
            min_suspect_clients: 4,
            max_clean_share: 0.02,
        }
    }
}

/// The tick's sample, split.
#[derive(Debug, Default)]
pub(crate) struct Split {
    /// Per sample: suspect (true) or clean.
    pub suspect: Vec<bool>,
    pub n_suspect: usize,
    pub suspect_clients: usize,
    pub heavy_clients: usize,
    pub impostors: usize,
    pub clients: usize,
    pub median: f64,
}

impl Split {
    pub(crate) fn of(samples: &[Sample], rate: f64, p: &ColdParams) -> Split {
        let n = samples.len();
        let mut per: HashMap<u64, u32> = HashMap::with_capacity(n.min(1024));
        for s in samples {
            if s.who.client != 0 {
                *per.entry(s.who.client).or_insert(0) += 1;
            }
        }
        let mut counts: Vec<u32> = per.values().copied().collect();
        counts.sort_unstable();
        let median = match counts.len() {
            0 => 0.0,
            l if l % 2 == 1 => f64::from(counts[l / 2]),
            l => (f64::from(counts[l / 2 - 1]) + f64::from(counts[l / 2])) / 2.0,
        };
        // Heavy: many times the median, at a rate of its own. Without a
        // population (fewer than 8 clients) there is no median to judge by.
        let per_sample_rate = if n > 0 { rate / n as f64 } else { 0.0 };
        let heavy = |c: u32| {
            counts.len() >= 8
                && f64::from(c) >= p.heavy_factor * median.max(1.0)
                && f64::from(c) * per_sample_rate >= p.heavy_min_rate
        };
        let mut out = Split {
            clients: counts.len(),
            median,
            heavy_clients: per.values().filter(|&&c| heavy(c)).count(),
            ..Split::default()
        };
        let mut suspect_clients: HashMap<u64, ()> = HashMap::new();
        for s in samples {
            let is_heavy = per.get(&s.who.client).is_some_and(|&c| heavy(c));
            let bad = !s.who.trusted && (s.who.suspect || is_heavy);
            if bad {
                out.n_suspect += 1;
                if s.who.suspect {
                    out.impostors += 1;
                }
                if s.who.client != 0 && suspect_clients.len() < SAMPLE_CAP {
                    suspect_clients.insert(s.who.client, ());
                }
            }
            out.suspect.push(bad);
        }
        out.suspect_clients = suspect_clients.len();
        out
    }

    /// Most of the sample is suspect, from several clients: a flood.
    pub(crate) fn flood(&self, p: &ColdParams) -> bool {
        let n = self.suspect.len();
        n >= 20
            && self.n_suspect as f64 >= p.min_suspect_share * n as f64
            && self.suspect_clients >= p.min_suspect_clients
    }

    /// Per dimension, the value counts of the clean samples.
    pub(crate) fn clean_counts(&self, samples: &[Sample]) -> (usize, Vec<HashMap<u64, u64>>) {
        let mut m: Vec<HashMap<u64, u64>> = (0..Dim::COUNT).map(|_| HashMap::new()).collect();
        let mut n = 0;
        for (s, bad) in samples.iter().zip(&self.suspect) {
            if *bad {
                continue;
            }
            n += 1;
            for d in Dim::ALL {
                let k = s.keys.get(d);
                if k != 0 {
                    *m[d.index()].entry(k).or_insert(0) += 1;
                }
            }
        }
        (n, m)
    }
}

/// A value that covers suspect traffic and (almost) no clean traffic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pick {
    pub dim: Dim,
    pub key: u64,
    /// Suspect samples with the value, and their share of the suspect part.
    pub count: u64,
    pub share: f64,
    /// The value's share of the clean part.
    pub clean_share: f64,
}

/// The values to make rules of, all in the dimension that covers most of
/// the suspect part (ties to the earlier, tighter dimension). `taken`
/// says whether a rule on (dim, key) exists already.
pub(crate) fn picks(
    samples: &[Sample],
    split: &Split,
    min_share: f64,
    p: &ColdParams,
    taken: impl Fn(Dim, u64) -> bool,
) -> Vec<Pick> {
    if split.n_suspect == 0 {
        return Vec::new();
    }
    let (n_clean, clean) = split.clean_counts(samples);
    let mut best: Option<(f64, Vec<Pick>)> = None;
    for d in Dim::ALL {
        let mut bad: HashMap<u64, u64> = HashMap::new();
        for (s, is_bad) in samples.iter().zip(&split.suspect) {
            let k = s.keys.get(d);
            if *is_bad && k != 0 {
                *bad.entry(k).or_insert(0) += 1;
            }
        }
        let mut picked = Vec::new();
        let mut covered = 0.0;
        for (&key, &count) in &bad {
            if taken(d, key) {
                continue;
            }
            let share = count as f64 / split.n_suspect as f64;
            // New networks appear in any crowd: a prefix needs twice the share.
            let need = if d == Dim::Prefix {
                min_share * 2.0
            } else {
                min_share
            };
            if share < need {
                continue;
            }
            let clean_share = if n_clean == 0 {
                0.0
            } else {
                clean[d.index()].get(&key).copied().unwrap_or(0) as f64 / n_clean as f64
            };
            if clean_share > p.max_clean_share {
                continue;
            }
            covered += share;
            picked.push(Pick {
                dim: d,
                key,
                count,
                share,
                clean_share,
            });
        }
        if !picked.is_empty() && best.as_ref().is_none_or(|(c, _)| covered > *c + 1e-9) {
            best = Some((covered, picked));
        }
    }
    let mut v = best.map(|(_, v)| v).unwrap_or_default();
    v.sort_by_key(|p| std::cmp::Reverse(p.count));
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(combo: u64, prefix: u64) -> Keys {
        let mut k = [0u64; Dim::COUNT];
        k[Dim::Combo.index()] = combo;
        k[Dim::UserAgent.index()] = combo ^ 0x10;
        k[Dim::Prefix.index()] = prefix;
        Keys(k)
    }

    fn sample(client: u64, combo: u64, suspect: bool) -> Sample {
        Sample {
            keys: keys(combo, client >> 8 | 1),
            who: Who {
                client,
                suspect,
                trusted: false,
            },
        }
    }

    #[test]
    fn heavy_hitters_are_judged_against_the_median_client() {
        // 30 light clients with 2 samples each, 3 heavy ones with 60 each,
        // all with browser-consistent traits.
        let mut s = Vec::new();
        for c in 0..30u64 {
            for _ in 0..2 {
                s.push(sample(1000 + c * 256, 7, false));
            }
        }
        for c in 0..3u64 {
            for _ in 0..60 {
                s.push(sample(9000 + c * 256, 99, false));
            }
        }
        let split = Split::of(&s, 2400.0, &ColdParams::default());
        assert_eq!(split.heavy_clients, 3);
        assert_eq!(split.n_suspect, 180);
        assert_eq!(split.median, 2.0);
        let p = ColdParams {
            min_suspect_clients: 3,
            ..ColdParams::default()
        };
        assert!(split.flood(&p));
        let picks = picks(&s, &split, 0.1, &p, |_, _| false);
        assert_eq!(picks.len(), 1);
        assert_eq!(picks[0].dim, Dim::Combo);
        assert_eq!(picks[0].key, 99);
        assert_eq!(picks[0].clean_share, 0.0);
    }

    #[test]
    fn a_crowd_of_equals_has_no_heavy_hitter_and_no_flood() {
        // 500 clients, each a few requests: a flash crowd of browsers.
        let s: Vec<Sample> = (0..2000u64)
            .map(|i| sample(1 + (i % 500) * 256, 7, false))
            .collect();
        let split = Split::of(&s, 20_000.0, &ColdParams::default());
        assert_eq!(split.heavy_clients, 0);
        assert_eq!(split.n_suspect, 0);
        assert!(!split.flood(&ColdParams::default()));
        assert!(picks(&s, &split, 0.1, &ColdParams::default(), |_, _| false).is_empty());
    }

    #[test]
    fn impostors_are_suspect_and_values_shared_with_clean_traffic_are_not_picked() {
        let mut s = Vec::new();
        // 300 bots, one request each in the tick, claiming a browser they are not.
        for c in 0..300u64 {
            s.push(sample(50_000 + c, 42, true));
        }
        // 30 real browsers; one of them shares the bots' combo (collateral).
        for c in 0..30u64 {
            s.push(sample(1 + c * 256, if c == 0 { 42 } else { 7 + c }, false));
        }
        let split = Split::of(&s, 3000.0, &ColdParams::default());
        assert_eq!(split.n_suspect, 300);
        assert!(split.flood(&ColdParams::default()));
        // The combo is 1/30 of the clean part: above 2%, not picked.
        let p = picks(&s, &split, 0.1, &ColdParams::default(), |_, _| false);
        assert!(p.iter().all(|p| p.key != 42));
        // Trusted clients are never suspect.
        let mut t = s.clone();
        for x in &mut t {
            x.who.trusted = true;
        }
        assert_eq!(Split::of(&t, 3000.0, &ColdParams::default()).n_suspect, 0);
    }

    #[test]
    fn one_client_alone_is_no_population() {
        let s: Vec<Sample> = (0..400).map(|_| sample(77, 5, false)).collect();
        let split = Split::of(&s, 4000.0, &ColdParams::default());
        assert_eq!(split.heavy_clients, 0);
        assert!(!split.flood(&ColdParams::default()));
    }
}
