//! One site's detector: a baseline learned from normal traffic, a mode with
//! hysteresis, and the ephemeral rules derived from an attack's signature.
//!
//! The edge feeds it two things: every request's outcome in counters (the
//! `Tick` it passes once per tick), and a sample of the requests that no rule
//! matched (`observe`). Time is a parameter; nothing here reads a clock.

use crate::cold::{self, ColdParams, Sample, Split, Who};
use crate::features::{Dim, Keys};
use std::collections::HashMap;

/// The site's mode. Each tightens the edge's knobs (see the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Normal,
    Elevated,
    UnderAttack,
}

impl Mode {
    pub fn label(self) -> &'static str {
        match self {
            Mode::Normal => "normal",
            Mode::Elevated => "elevated",
            Mode::UnderAttack => "under_attack",
        }
    }

    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "normal" => Some(Mode::Normal),
            "elevated" => Some(Mode::Elevated),
            "under_attack" => Some(Mode::UnderAttack),
            _ => None,
        }
    }

    fn down(self) -> Mode {
        match self {
            Mode::UnderAttack => Mode::Elevated,
            _ => Mode::Normal,
        }
    }
}

/// What a rule does to the requests it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Block,
    Challenge,
    RateLimit,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Challenge => "challenge",
            Action::RateLimit => "rate_limit",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "block" => Some(Action::Block),
            "challenge" => Some(Action::Challenge),
            "rate_limit" => Some(Action::RateLimit),
            _ => None,
        }
    }
}

/// An ephemeral rule: requests whose key in `dim` is `key`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rule {
    pub id: u64,
    pub dim: Dim,
    #[serde(skip)]
    pub key: u64,
    /// The matched value, readable.
    pub value: String,
    pub action: Action,
    pub created_ms: u64,
    /// Evidence when it was derived.
    pub evidence: Evidence,
    /// Requests matched since it was created (updated every tick).
    pub matches: u64,
    /// Ticks in a row with (almost) no match.
    #[serde(skip)]
    idle_ticks: u32,
    /// The fleet edge that derived it, for a rule learnt from another edge.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// Why a rule was made.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Evidence {
    /// Sampled requests of the tick that had the value, and their share.
    pub sampled: u64,
    pub attack_share: f64,
    /// Its share of the baseline's traffic.
    pub baseline_share: f64,
    /// Request rate (per second) when derived, and the baseline rate.
    pub rate: f64,
    pub baseline_rate: f64,
    /// Expected share of the matched requests that are legitimate.
    pub collateral: f64,
    /// What the value was judged against: `baseline` (the learned one) or
    /// `population` (no baseline yet: the tick's own clean traffic, whose
    /// share is then in `baseline_share`).
    pub basis: &'static str,
}

/// Tuning; defaults suit a site with a few requests per second or more.
#[derive(Debug, Clone)]
pub struct Params {
    pub tick_ms: u64,
    /// Ticks of normal traffic before the baseline is trusted for rules.
    pub learn_ticks: u64,
    /// Anomalous: rate above `rate_factor` × baseline and above `min_rate`.
    pub rate_factor: f64,
    pub min_rate: f64,
    /// A value must be at least this share of the sampled traffic…
    pub min_share: f64,
    /// …this many times over its baseline share…
    pub min_lift: f64,
    /// …and the legitimate share of what it matches must be at most this.
    pub max_collateral: f64,
    /// Calm ticks before stepping down one mode.
    pub calm_ticks: u32,
    /// Ticks with fewer than `idle_rate` matches per second before a rule expires.
    pub rule_idle_ticks: u32,
    pub idle_rate: f64,
    /// Baseline smoothing per tick (0..1).
    pub alpha: f64,
    pub max_rules: usize,
    /// What new rules do.
    pub action: Action,
    /// Detection without a baseline (`cold`).
    pub cold: ColdParams,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            tick_ms: 500,
            learn_ticks: 20,
            rate_factor: 3.0,
            min_rate: 50.0,
            min_share: 0.1,
            min_lift: 4.0,
            max_collateral: 0.01,
            calm_ticks: 60,
            rule_idle_ticks: 20,
            idle_rate: 1.0,
            alpha: 0.05,
            max_rules: 32,
            action: Action::Challenge,
            cold: ColdParams::default(),
        }
    }
}

/// Counters the edge passes once per tick (since the previous tick).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tick {
    pub now_ms: u64,
    pub requests: u64,
    /// Origin 5xx and edge 502/504.
    pub errors: u64,
    /// Requests shed for origin capacity.
    pub shed: u64,
    /// The origin is at its concurrency limit with a queue.
    pub saturated: bool,
    /// Mean origin latency of the tick, ms (0 when none).
    pub latency_ms: f64,
    /// Requests from clients first seen in this tick (sampled or counted).
    pub new_clients: u64,
}

/// What changed in a tick: the raw material of events.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Change {
    Mode { from: Mode, to: Mode, why: String },
    RuleAdded { rule: Rule },
    RuleExpired { rule: Rule },
}

/// Space-saving counter with labels, `cap` entries.
#[derive(Debug, Default)]
struct Counter {
    entries: HashMap<u64, (u64, String)>,
}

const COUNTER_CAP: usize = 64;
const BASE_CAP: usize = 512;

impl Counter {
    fn add(&mut self, key: u64, label: &str) {
        if key == 0 {
            return;
        }
        if let Some(e) = self.entries.get_mut(&key) {
            e.0 += 1;
            return;
        }
        if self.entries.len() >= COUNTER_CAP {
            if let Some((&victim, &(c, _))) = self.entries.iter().min_by_key(|(_, v)| v.0) {
                self.entries.remove(&victim);
                self.entries.insert(key, (c + 1, label.to_string()));
            }
            return;
        }
        self.entries.insert(key, (1, label.to_string()));
    }
}

/// Exponentially smoothed mean.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Ewma {
    pub value: f64,
    #[serde(skip)]
    primed: bool,
}

impl Ewma {
    fn add(&mut self, x: f64, alpha: f64) {
        if self.primed {
            self.value += alpha * (x - self.value);
        } else {
            self.value = x;
            self.primed = true;
        }
    }
}

/// The learned picture of normal traffic.
#[derive(Debug, Default, serde::Serialize)]
pub struct Baseline {
    pub ticks: u64,
    /// Requests per second.
    pub rate: Ewma,
    pub error_rate: Ewma,
    pub latency_ms: Ewma,
    /// New clients per second.
    pub new_clients: Ewma,
    #[serde(skip)]
    shares: Vec<HashMap<u64, f64>>,
}

impl Baseline {
    fn share(&self, d: Dim, key: u64) -> f64 {
        self.shares
            .get(d.index())
            .and_then(|m| m.get(&key))
            .copied()
            .unwrap_or(0.0)
    }
}

/// A site's detector.
#[derive(Debug)]
pub struct Detector {
    p: Params,
    mode: Mode,
    pinned: Option<Mode>,
    calm: u32,
    sampled: u64,
    window: Vec<Counter>,
    pub baseline: Baseline,
    rules: Vec<Rule>,
    next_id: u64,
    last_rate: f64,
    last_anomaly: bool,
    /// The tick's sampled requests with who sent them (for `cold`).
    samples: Vec<Sample>,
    /// Recent traffic per dimension, decayed (for the dashboard).
    pub recent: crate::recent::Recent,
}

impl Detector {
    pub fn new(p: Params) -> Detector {
        Detector {
            p,
            mode: Mode::Normal,
            pinned: None,
            calm: 0,
            sampled: 0,
            window: (0..Dim::COUNT).map(|_| Counter::default()).collect(),
            baseline: Baseline {
                shares: (0..Dim::COUNT).map(|_| HashMap::new()).collect(),
                ..Baseline::default()
            },
            rules: Vec::new(),
            next_id: 1,
            last_rate: 0.0,
            last_anomaly: false,
            samples: Vec::new(),
            recent: crate::recent::Recent::default(),
        }
    }

    pub fn params(&self) -> &Params {
        &self.p
    }

    /// Keep the learned state, take new tuning (on reload).
    pub fn set_params(&mut self, p: Params) {
        self.p = p;
    }

    pub fn mode(&self) -> Mode {
        self.pinned.unwrap_or(self.mode)
    }

    pub fn pinned(&self) -> Option<Mode> {
        self.pinned
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn last_rate(&self) -> f64 {
        self.last_rate
    }

    pub fn anomalous(&self) -> bool {
        self.last_anomaly
    }

    /// Whether the baseline has seen enough normal traffic to judge shares.
    pub fn learned(&self) -> bool {
        self.baseline.ticks >= self.p.learn_ticks
    }

    /// Pin a mode (an operator's decision), or `None` to return to automatic.
    pub fn pin(&mut self, mode: Option<Mode>) -> Vec<Change> {
        let before = self.mode();
        self.pinned = mode;
        let after = self.mode();
        if before == after {
            return Vec::new();
        }
        vec![Change::Mode {
            from: before,
            to: after,
            why: match mode {
                Some(_) => "pinned by an operator".into(),
                None => "returned to automatic by an operator".into(),
            },
        }]
    }

    /// Drop rule `id` (an operator's decision); the rule, if it was there.
    pub fn drop_rule(&mut self, id: u64) -> Option<Rule> {
        let i = self.rules.iter().position(|r| r.id == id)?;
        Some(self.rules.remove(i))
    }

    /// Take on a rule another edge of the fleet derived: requests whose
    /// feature `dim` hashes to `key` (hashes are stable across processes).
    /// It then lives here like a rule of this edge's own (expiring when
    /// idle). `None` if this edge has it already or is at `max_rules`.
    pub fn import_rule(
        &mut self,
        dim: Dim,
        key: u64,
        value: &str,
        action: Action,
        from: &str,
        now_ms: u64,
    ) -> Option<Rule> {
        if self.rules.iter().any(|r| r.dim == dim && r.key == key)
            || self.rules.len() >= self.p.max_rules
        {
            return None;
        }
        let rule = Rule {
            id: self.next_id,
            dim,
            key,
            value: value.to_string(),
            action,
            created_ms: now_ms,
            evidence: Evidence {
                sampled: 0,
                attack_share: 0.0,
                baseline_share: 0.0,
                rate: 0.0,
                baseline_rate: 0.0,
                collateral: 0.0,
                basis: "fleet",
            },
            matches: 0,
            idle_ticks: 0,
            from: Some(from.to_string()),
        };
        self.next_id += 1;
        self.rules.push(rule.clone());
        Some(rule)
    }

    /// Record one sampled request that no rule matched. `labels` is called
    /// only for values not yet in the window.
    pub fn observe(&mut self, keys: &Keys, labels: impl FnOnce() -> [String; Dim::COUNT]) {
        self.observe_from(keys, Who::default(), labels);
    }

    /// Record one sampled request that no rule matched, with who sent it
    /// (for detection without a baseline).
    pub fn observe_from(
        &mut self,
        keys: &Keys,
        who: Who,
        labels: impl FnOnce() -> [String; Dim::COUNT],
    ) {
        if self.samples.len() < cold::SAMPLE_CAP {
            self.samples.push(Sample { keys: *keys, who });
        }
        self.sampled += 1;
        let missing = Dim::ALL.iter().any(|d| {
            let k = keys.get(*d);
            k != 0 && !self.window[d.index()].entries.contains_key(&k)
        });
        if missing {
            let l = labels();
            for d in Dim::ALL {
                self.window[d.index()].add(keys.get(d), &l[d.index()]);
            }
        } else {
            for d in Dim::ALL {
                self.window[d.index()].add(keys.get(d), "");
            }
        }
    }

    /// The first rule matching a request, if any.
    pub fn matching(rules: &[Rule], keys: &Keys) -> Option<usize> {
        rules.iter().position(|r| keys.get(r.dim) == r.key)
    }

    /// Advance one tick. `matches[i]` counts the requests rule `i` (of
    /// `rules()` as they were) matched since the previous tick.
    pub fn tick(&mut self, t: &Tick, matches: &[u64]) -> Vec<Change> {
        let secs = self.p.tick_ms.max(1) as f64 / 1000.0;
        let rate = t.requests as f64 / secs;
        self.last_rate = rate;
        let mut changes = Vec::new();
        let before = self.mode();

        // Rules: count matches, expire the idle ones.
        for (r, m) in self.rules.iter_mut().zip(matches.iter().copied()) {
            r.matches += m;
            if (m as f64) / secs < self.p.idle_rate {
                r.idle_ticks += 1;
            } else {
                r.idle_ticks = 0;
            }
        }
        let idle = self.p.rule_idle_ticks;
        let (expired, kept): (Vec<Rule>, Vec<Rule>) = std::mem::take(&mut self.rules)
            .into_iter()
            .partition(|r| r.idle_ticks >= idle);
        self.rules = kept;
        changes.extend(expired.into_iter().map(|rule| Change::RuleExpired { rule }));

        let base_rate = self.baseline.rate.value;
        let learned = self.learned();
        let threshold = (self.p.rate_factor * base_rate).max(self.p.min_rate);
        // Without a baseline the rate proves nothing on its own: saturation
        // counts, and so does a sample that is mostly suspect (`cold`).
        let rate_anomaly = learned && rate > threshold;
        let saturated = (t.saturated || t.shed > 0) && rate > self.p.min_rate;
        let matched_rate = matches.iter().sum::<u64>() as f64 / secs;
        let unmatched = (rate - matched_rate).max(0.0);
        let samples = std::mem::take(&mut self.samples);
        let split = (!learned).then(|| Split::of(&samples, unmatched, &self.p.cold));
        let flood = split
            .as_ref()
            .is_some_and(|s| unmatched > self.p.min_rate && s.flood(&self.p.cold));
        // An attack that rules hold off still counts, so that the mode stays.
        let anomaly = rate_anomaly || saturated || flood || matched_rate > self.p.min_rate;
        self.last_anomaly = anomaly;

        // What the rules did not match is what was sampled; derive more rules
        // only while that remainder is itself anomalous.
        let rest_anomalous = unmatched > threshold;
        if self.rules.len() < self.p.max_rules {
            let new = match &split {
                None if rest_anomalous => self.derive(unmatched, base_rate, t.now_ms),
                Some(sp) if flood || (saturated && unmatched > self.p.min_rate) => {
                    self.derive_cold(&samples, sp, unmatched, t.now_ms)
                }
                _ => Vec::new(),
            };
            for rule in new {
                changes.push(Change::RuleAdded { rule: rule.clone() });
                self.rules.push(rule);
            }
        }

        if anomaly {
            self.calm = 0;
            let target = if self.rules.is_empty() {
                Mode::Elevated
            } else {
                Mode::UnderAttack
            };
            if target > self.mode {
                self.mode = target;
            }
        } else {
            self.calm += 1;
            if self.calm >= self.p.calm_ticks && self.mode != Mode::Normal {
                self.mode = self.mode.down();
                self.calm = 0;
            }
            // Only traffic teaches: an edge idle for its learning period
            // has no baseline (else the first real visitors would all look
            // over-represented against an empty one).
            if self.mode == Mode::Normal && t.requests > 0 {
                self.learn(t, rate);
            }
        }
        // Started under attack: learn from what was judged legitimate, so
        // that the edge does not stay without a baseline for ever.
        if let (Some(sp), true) = (&split, self.mode != Mode::Normal) {
            let (n, counts) = sp.clean_counts(&samples);
            if n >= 10 {
                let clean_rate = unmatched * n as f64 / samples.len().max(1) as f64;
                self.learn_from(t, clean_rate, n as f64, &counts);
            }
        }
        for d in Dim::ALL {
            let c = &self.window[d.index()];
            self.recent
                .fold(d, c.entries.iter().map(|(k, (n, l))| (*k, *n, l.as_str())));
        }
        for c in &mut self.window {
            c.entries.clear();
        }
        self.sampled = 0;

        let after = self.mode();
        if after != before {
            let why = if anomaly {
                let mut w = format!(
                    "{rate:.0} req/s against a baseline of {base_rate:.0} req/s (threshold {threshold:.0})"
                );
                if saturated {
                    w.push_str(", origin saturated");
                }
                if let (Some(sp), false) = (&split, learned) {
                    w = format!(
                        "{rate:.0} req/s with no baseline yet: {} of {} sampled requests suspect ({} claiming a browser they are not or naming a tool, {} heavy clients at {}+ x the median client's {:.0} samples) from {} of {} clients",
                        sp.n_suspect,
                        sp.suspect.len(),
                        sp.impostors,
                        sp.heavy_clients,
                        self.p.cold.heavy_factor,
                        sp.median,
                        sp.suspect_clients,
                        sp.clients
                    );
                    if saturated {
                        w.push_str(", origin saturated");
                    }
                }
                if after == Mode::UnderAttack {
                    w.push_str(&format!(", {} signature rule(s)", self.rules.len()));
                } else if after == Mode::Elevated {
                    w.push_str(", no over-represented population (flash crowd or diffuse attack)");
                }
                w
            } else {
                format!(
                    "calm for {} s",
                    self.p.calm_ticks as u64 * self.p.tick_ms / 1000
                )
            };
            changes.push(Change::Mode {
                from: before,
                to: after,
                why,
            });
        }
        changes
    }

    /// Count one tick of learning and give its smoothing: fast at first,
    /// then `alpha`; the rate and latency are learned here.
    fn learn_step(&mut self, t: &Tick, rate: f64) -> f64 {
        let a = if self.baseline.ticks < self.p.learn_ticks {
            1.0 / (self.baseline.ticks + 1) as f64
        } else {
            self.p.alpha
        };
        self.baseline.ticks += 1;
        self.baseline.rate.add(rate, a);
        if t.latency_ms > 0.0 {
            self.baseline.latency_ms.add(t.latency_ms, a);
        }
        a
    }

    fn learn(&mut self, t: &Tick, rate: f64) {
        let a = self.learn_step(t, rate);
        let secs = self.p.tick_ms.max(1) as f64 / 1000.0;
        let err = if t.requests > 0 {
            t.errors as f64 / t.requests as f64
        } else {
            0.0
        };
        self.baseline.error_rate.add(err, a);
        self.baseline
            .new_clients
            .add(t.new_clients as f64 / secs, a);
        if self.sampled == 0 {
            return;
        }
        let n = self.sampled as f64;
        let counts: Vec<HashMap<u64, u64>> = self
            .window
            .iter()
            .map(|c| c.entries.iter().map(|(k, (n, _))| (*k, *n)).collect())
            .collect();
        self.learn_shares(a, n, &counts);
    }

    /// Learn a tick of traffic judged legitimate during an attack: its rate
    /// and the shares of its values (`n` requests, `counts` per dimension).
    fn learn_from(&mut self, t: &Tick, rate: f64, n: f64, counts: &[HashMap<u64, u64>]) {
        let a = self.learn_step(t, rate);
        self.learn_shares(a, n, counts);
    }

    fn learn_shares(&mut self, a: f64, n: f64, counts: &[HashMap<u64, u64>]) {
        for d in Dim::ALL {
            let m = &mut self.baseline.shares[d.index()];
            for v in m.values_mut() {
                *v *= 1.0 - a;
            }
            for (k, c) in counts.get(d.index()).into_iter().flatten() {
                *m.entry(*k).or_insert(0.0) += a * (*c as f64 / n);
            }
            m.retain(|_, v| *v >= 1e-4);
            if m.len() > BASE_CAP {
                let mut v: Vec<(u64, f64)> = m.iter().map(|(k, s)| (*k, *s)).collect();
                v.sort_by(|x, y| y.1.total_cmp(&x.1));
                v.truncate(BASE_CAP);
                *m = v.into_iter().collect();
            }
        }
    }

    /// The over-represented values of this tick's sample, all in the one
    /// dimension that covers most of it. `rate` is the rate of the requests
    /// no rule matched (the ones sampled).
    fn derive(&mut self, rate: f64, base_rate: f64, now_ms: u64) -> Vec<Rule> {
        if self.sampled < 20 {
            return Vec::new();
        }
        let n = self.sampled as f64;
        let mut best: Option<(f64, Vec<Rule>)> = None;
        for d in Dim::ALL {
            let mut picked = Vec::new();
            let mut covered = 0.0;
            for (&key, (count, label)) in &self.window[d.index()].entries {
                if self.rules.iter().any(|r| r.dim == d && r.key == key) {
                    continue;
                }
                let share = *count as f64 / n;
                // New networks appear in any crowd: a prefix needs twice the share.
                let min_share = if d == Dim::Prefix {
                    self.p.min_share * 2.0
                } else {
                    self.p.min_share
                };
                if share < min_share {
                    continue;
                }
                // The share of legitimate (baseline) traffic the rule would hit.
                let base = self.baseline.share(d, key);
                if base > self.p.max_collateral {
                    continue;
                }
                let lift = share / base.max(1e-3);
                if lift < self.p.min_lift {
                    continue;
                }
                // Of what it matches, the expected legitimate part.
                let legit = base * base_rate;
                let matched = (share * rate).max(1e-9);
                let collateral = (legit / matched).min(1.0);
                covered += share;
                picked.push(Rule {
                    id: 0,
                    dim: d,
                    key,
                    value: label.clone(),
                    action: self.p.action,
                    created_ms: now_ms,
                    from: None,
                    evidence: Evidence {
                        sampled: *count,
                        attack_share: share,
                        baseline_share: base,
                        rate,
                        baseline_rate: base_rate,
                        collateral,
                        basis: "baseline",
                    },
                    matches: 0,
                    idle_ticks: 0,
                });
            }
            // Ties go to the earlier (tighter) dimension.
            if !picked.is_empty() && best.as_ref().is_none_or(|(c, _)| covered > *c + 1e-9) {
                best = Some((covered, picked));
            }
        }
        let mut rules = best.map(|(_, r)| r).unwrap_or_default();
        rules.sort_by_key(|r| std::cmp::Reverse(r.evidence.sampled));
        rules.truncate(self.p.max_rules.saturating_sub(self.rules.len()));
        for r in &mut rules {
            r.id = self.next_id;
            self.next_id += 1;
        }
        rules
    }
}

impl Detector {
    /// Rules from the tick's own population, for an edge with no baseline.
    fn derive_cold(
        &mut self,
        samples: &[Sample],
        split: &Split,
        rate: f64,
        now_ms: u64,
    ) -> Vec<Rule> {
        let rules = &self.rules;
        let picks = cold::picks(samples, split, self.p.min_share, &self.p.cold, |d, k| {
            rules.iter().any(|r| r.dim == d && r.key == k)
        });
        let n = samples.len().max(1) as f64;
        let clean_rate = rate * (1.0 - split.n_suspect as f64 / n);
        let suspect_rate = rate * split.n_suspect as f64 / n;
        let mut out = Vec::new();
        for p in picks
            .into_iter()
            .take(self.p.max_rules.saturating_sub(self.rules.len()))
        {
            let value = self.window[p.dim.index()]
                .entries
                .get(&p.key)
                .map(|(_, l)| l.clone())
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| format!("{:016x}", p.key));
            let legit = p.clean_share * clean_rate;
            let matched = (p.share * suspect_rate).max(1e-9);
            out.push(Rule {
                id: self.next_id,
                dim: p.dim,
                key: p.key,
                value,
                action: self.p.action,
                created_ms: now_ms,
                from: None,
                evidence: Evidence {
                    sampled: p.count,
                    attack_share: p.share,
                    baseline_share: p.clean_share,
                    rate,
                    baseline_rate: clean_rate,
                    collateral: (legit / matched).min(1.0),
                    basis: "population",
                },
                matches: 0,
                idle_ticks: 0,
            });
            self.next_id += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::{labels, Request};

    fn params() -> Params {
        Params {
            tick_ms: 1000,
            learn_ticks: 5,
            calm_ticks: 3,
            rule_idle_ticks: 2,
            ..Params::default()
        }
    }

    #[test]
    fn idle_ticks_teach_nothing() {
        let mut d = Detector::new(params());
        for i in 0..50 {
            d.tick(
                &Tick {
                    now_ms: i * 1000,
                    ..Tick::default()
                },
                &[],
            );
        }
        assert!(!d.learned(), "an idle edge has no baseline");
        for i in 50..55 {
            d.tick(
                &Tick {
                    now_ms: i * 1000,
                    requests: 10,
                    ..Tick::default()
                },
                &[],
            );
        }
        assert!(d.learned());
    }

    #[test]
    fn window_memory_is_bounded() {
        let mut d = Detector::new(params());
        for i in 0..100_000u32 {
            let ip = std::net::Ipv4Addr::from(i.wrapping_mul(2_654_435_761));
            let path = format!("/p{i}");
            let r = Request {
                client: ip.into(),
                method: b"GET",
                path: path.as_bytes(),
                query: b"",
                user_agent: path.as_bytes(),
                header_order: u64::from(i) | 1,
                ja4: None,
                h2: None,
            };
            d.observe(&Keys::of(&r), || labels(&r, "x"));
        }
        assert!(d.window.iter().all(|c| c.entries.len() <= COUNTER_CAP));
        d.tick(
            &Tick {
                requests: 10,
                ..Tick::default()
            },
            &[],
        );
        assert!(d.baseline.shares.iter().all(|m| m.len() <= BASE_CAP));
    }
}
