//! Adaptive defense at the edge: feeds each site's detector
//! (`levee_detect`), applies its rules and its mode's knobs to requests, and
//! ticks the detectors and the origins' adaptive limits.
//!
//! Per request (`assess`): count it, classify the client for priority
//! admission, match the site's rules (one comparison each), and sample the
//! unmatched ones for the detector. Per tick (`SiteDefense::tick`, driven by `Shared::tick`): hand the counters
//! to the detectors, publish new rules and modes, write events, adapt origin
//! limits, and tighten connection-level knobs while any site is under attack.
//!
//! What it does not do: decide what an attack is (that is `levee_detect`) or
//! write responses (the protocol modules do, from the `Outcome`).

use crate::admission::Class;
use crate::ratelimit::ip_key;
use crate::upstream::Origin;
use arc_swap::ArcSwap;
use levee_config::{Defense, RuleAction};
use levee_detect::{Action, Change, Detector, Keys, Mode, Params, Request, Rule, Tick, Who};
use levee_limits::rate::{RateDecision, RateLimiter};
use levee_limits::seen::SeenSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The rules in force, with their match counters for the current tick.
#[derive(Debug, Default)]
pub(crate) struct RuleSet {
    pub rules: Vec<Rule>,
    pub hits: Vec<AtomicU64>,
}

/// A site's detection state; survives reloads (carried over by site name).
#[derive(Debug)]
pub(crate) struct SiteDefense {
    detector: Mutex<Detector>,
    rules: ArcSwap<RuleSet>,
    mode: AtomicU8,
    requests: AtomicU64,
    errors: AtomicU64,
    new_clients: AtomicU64,
    sample_every: AtomicU64,
    counter: AtomicU64,
    seen: SeenSet,
    /// Block-rule hits per client (for automatic blocks), 10 s windows.
    rule_hits: RateLimiter,
    /// Requests per client matching rate-limit rules, 1 s windows.
    rule_rate: RateLimiter,
    last_tick_ms: AtomicU64,
    last_rotate_ms: AtomicU64,
    last_shed: Mutex<[u64; 5]>,
}

/// New clients stamped in the seen set per tick, at most.
const NEW_CLIENTS_PER_TICK: u64 = 1000;

fn action(a: RuleAction) -> Action {
    match a {
        RuleAction::Block => Action::Block,
        RuleAction::Challenge => Action::Challenge,
        RuleAction::RateLimit => Action::RateLimit,
    }
}

/// Detector tuning from the site's configuration.
pub(crate) fn params(d: &Defense) -> Params {
    let tick_ms = (d.tick.as_duration().as_millis() as u64).max(50);
    let ticks = |x: &levee_config::Dur| (x.as_duration().as_millis() as u64).div_ceil(tick_ms);
    Params {
        tick_ms,
        learn_ticks: ticks(&d.learn),
        rate_factor: d.rate_factor,
        min_rate: d.min_rate,
        min_share: d.min_share,
        min_lift: d.min_lift,
        max_collateral: d.max_collateral,
        calm_ticks: ticks(&d.cooldown).max(1) as u32,
        rule_idle_ticks: ticks(&d.rule_idle).max(1) as u32,
        idle_rate: 1.0,
        alpha: (tick_ms as f64 / d.baseline_window.as_duration().as_millis().max(1) as f64)
            .clamp(1e-6, 1.0),
        max_rules: d.max_rules as usize,
        action: action(d.rule_action),
        cold: levee_detect::ColdParams::default(),
    }
}

fn mode_from(m: levee_config::ModeName) -> Mode {
    match m {
        levee_config::ModeName::Normal => Mode::Normal,
        levee_config::ModeName::Elevated => Mode::Elevated,
        levee_config::ModeName::UnderAttack => Mode::UnderAttack,
    }
}

fn mode_u8(m: Mode) -> u8 {
    m as u8
}

fn u8_mode(v: u8) -> Mode {
    match v {
        2 => Mode::UnderAttack,
        1 => Mode::Elevated,
        _ => Mode::Normal,
    }
}

/// What the edge knows of a request when it assesses it.
pub(crate) struct Inputs<'a> {
    pub req: Request<'a>,
    /// Header names in order, readable (called only for sampled requests).
    pub header_names: &'a (dyn Fn() -> String + Sync),
    /// The User-Agent's claim against the request's traits (called only for sampled requests).
    pub judge: &'a (dyn Fn() -> levee_detect::browser::Judgement + Sync),
    /// Staff or verified, as the challenge policy found.
    pub trusted: Option<Class>,
    /// Marked by a protocol defense.
    pub marked: bool,
}

/// What to do with a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    pub class: Class,
    pub mode: Mode,
    /// The matching rule's action, if any.
    pub action: Option<Action>,
    /// A rate-limit rule's client is over its rate.
    pub over_rule_rate: bool,
}

fn is_prefix_block(r: &levee_detect::Rule) -> bool {
    r.dim == levee_detect::Dim::Prefix && r.action == levee_detect::Action::Block
}

impl SiteDefense {
    pub(crate) fn new(cfg: &Defense, seeds: [u64; 4]) -> SiteDefense {
        let mut d = Detector::new(params(cfg));
        if let Some(m) = cfg.pin {
            d.pin(Some(mode_from(m)));
        }
        let mode = d.mode();
        SiteDefense {
            detector: Mutex::new(d),
            rules: ArcSwap::from_pointee(RuleSet::default()),
            mode: AtomicU8::new(mode_u8(mode)),
            requests: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            new_clients: AtomicU64::new(0),
            sample_every: AtomicU64::new(1),
            counter: AtomicU64::new(0),
            seen: SeenSet::new(22, seeds[0]),
            rule_hits: RateLimiter::new(cfg.auto_block_after.max(1), 10_000, 14, seeds),
            rule_rate: RateLimiter::new(10, 1000, 14, seeds),
            last_tick_ms: AtomicU64::new(0),
            last_rotate_ms: AtomicU64::new(0),
            last_shed: Mutex::new([0; 5]),
        }
    }

    /// Take new tuning on reload, keeping what was learned.
    pub(crate) fn reconfigure(&self, cfg: &Defense) {
        let mut d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        d.set_params(params(cfg));
    }

    pub(crate) fn mode(&self) -> Mode {
        u8_mode(self.mode.load(Ordering::Relaxed))
    }

    /// Pin a mode or return to automatic; the changes become events.
    pub(crate) fn pin(&self, mode: Option<Mode>) -> Vec<Change> {
        let mut d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        let c = d.pin(mode);
        self.mode.store(mode_u8(d.mode()), Ordering::Relaxed);
        c
    }

    /// Take on a rule another fleet edge derived (see `Detector::import_rule`);
    /// the rule set the request path reads is rebuilt with it.
    pub(crate) fn import_rule(
        &self,
        dim: levee_detect::Dim,
        key: u64,
        value: &str,
        action: Action,
        from: &str,
        now_ms: u64,
    ) -> Option<Rule> {
        let mut d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        let rule = d.import_rule(dim, key, value, action, from, now_ms)?;
        self.republish(&d);
        Some(rule)
    }

    /// The rule set the request path reads, rebuilt from the detector's
    /// (hits kept by rule id).
    fn republish(&self, d: &Detector) {
        let rules = d.rules().to_vec();
        let old = self.rules.load();
        let hits = rules
            .iter()
            .map(|r| {
                let i = old.rules.iter().position(|o| o.id == r.id);
                AtomicU64::new(
                    i.and_then(|i| old.hits.get(i))
                        .map_or(0, |h| h.load(Ordering::Relaxed)),
                )
            })
            .collect();
        self.rules.store(Arc::new(RuleSet { rules, hits }));
    }

    /// Drop rule `id` (an operator's decision, from the admin API).
    pub(crate) fn drop_rule(&self, id: u64) -> Option<Rule> {
        let mut d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        let rule = d.drop_rule(id)?;
        self.republish(&d);
        Some(rule)
    }

    /// The heaviest recent values of the dashboard's dimensions, with shares.
    pub(crate) fn top(&self, n: usize) -> serde_json::Value {
        use levee_detect::Dim;
        let d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        let t = |dim| d.recent.top(dim, n);
        serde_json::json!({
            "prefix": t(Dim::Prefix),
            "path": t(Dim::Path),
            "user_agent": t(Dim::UserAgent),
            "ja4": t(Dim::Ja4),
        })
    }

    /// The site's mode, rule count and request rate, for the fleet's heartbeat.
    pub(crate) fn summary(&self) -> serde_json::Value {
        let d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::json!({
            "mode": d.mode().label(),
            "pinned": d.pinned().map(Mode::label),
            "rules": d.rules().len(),
            "rate": d.last_rate(),
        })
    }

    /// Count an origin or gateway error (5xx) for the baseline.
    pub(crate) fn error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Count, classify, match and sample a request.
    pub(crate) fn assess(&self, cfg: &Defense, inp: &Inputs<'_>, now_ms: u64) -> Outcome {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mode = self.mode();
        let client = ip_key(inp.req.client);
        let now_s = now_ms / 1000;
        // History is per subscriber: IPv6 clients by their /64.
        let history = match inp.req.client {
            std::net::IpAddr::V6(v6) => u128::from(v6) & !((1u128 << 64) - 1),
            v4 => ip_key(v4),
        };
        let after = cfg.returning_after.as_duration().as_secs();
        // Only normal traffic is remembered: "returning" means seen twice,
        // `returning_after` apart, before the attack.
        // At most NEW_CLIENTS_PER_TICK new clients are stamped per tick
        // (review finding 10): fresh addresses cannot fill the table fast.
        let may_add = self.new_clients.load(Ordering::Relaxed) < NEW_CLIENTS_PER_TICK;
        if mode == Mode::Normal && self.seen.insert_capped(history, now_s, after, may_add) {
            self.new_clients.fetch_add(1, Ordering::Relaxed);
        }
        let returning = self.seen.returning(history, now_s, after);
        let mut action = None;
        let mut over_rule_rate = false;
        if cfg.enabled && inp.trusted != Some(Class::Staff) {
            let rules = self.rules.load();
            let every = self.sample_every.load(Ordering::Relaxed).max(1);
            let sampled = self
                .counter
                .fetch_add(1, Ordering::Relaxed)
                .is_multiple_of(every);
            if !rules.rules.is_empty() || sampled {
                let keys = Keys::of(&inp.req);
                match Detector::matching(&rules.rules, &keys) {
                    Some(i) => {
                        if let Some(h) = rules.hits.get(i) {
                            h.fetch_add(1, Ordering::Relaxed);
                        }
                        let a = rules.rules[i].action;
                        if a == Action::RateLimit {
                            over_rule_rate = matches!(
                                self.rule_rate.check(client, now_ms),
                                RateDecision::Limit { .. }
                            );
                        }
                        action = Some(a);
                    }
                    None if sampled => {
                        let names = inp.header_names;
                        let who = Who {
                            // The client's history key, folded (a /64 for IPv6).
                            client: (history as u64 ^ (history >> 64) as u64) | 1,
                            suspect: (inp.judge)().suspect(),
                            trusted: inp.trusted == Some(Class::Verified),
                        };
                        self.detector
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .observe_from(&keys, who, || {
                                levee_detect::features::labels(&inp.req, &names())
                            });
                    }
                    None => {}
                }
            }
        }
        let class = match inp.trusted {
            Some(c) => c,
            None if inp.marked || action.is_some() => Class::Suspicious,
            None if returning => Class::Returning,
            None => Class::Unknown,
        };
        Outcome {
            class,
            mode,
            action,
            over_rule_rate,
        }
    }

    /// A client matched a block rule: true once, when it crosses `auto_block_after`.
    pub(crate) fn should_auto_block(&self, cfg: &Defense, ip: IpAddr, now_ms: u64) -> bool {
        if cfg.auto_block_after == 0 {
            return false;
        }
        let key = ip_key(ip);
        let n = self.rule_hits.sketch().hit(key, now_ms);
        n == cfg.auto_block_after
    }

    /// Client prefixes that live `block` rules name (for the packet filter).
    pub(crate) fn block_prefixes(&self) -> Vec<levee_config::Cidr> {
        let d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        d.rules()
            .iter()
            .filter(|r| is_prefix_block(r))
            .filter_map(|r| r.value.parse().ok())
            .collect()
    }

    /// Whether any live rule blocks a client prefix (cheap: no allocation).
    pub(crate) fn has_prefix_block_rules(&self) -> bool {
        let d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        d.rules().iter().any(is_prefix_block)
    }

    /// Status for the admin API.
    pub(crate) fn status(&self) -> serde_json::Value {
        let d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
        serde_json::json!({
            "mode": d.mode().label(),
            "pinned": d.pinned().map(Mode::label),
            "anomalous": d.anomalous(),
            "rate": d.last_rate(),
            "learned": d.learned(),
            "baseline": d.baseline,
            "rules": d.rules(),
        })
    }

    /// One tick for this site, if due: what changed, for the caller to publish.
    pub(crate) fn tick(
        &self,
        origins: &[Arc<Origin>],
        cfg: &Defense,
        now_ms: u64,
    ) -> Option<TickReport> {
        let p_tick = params(cfg).tick_ms;
        let last = self.last_tick_ms.load(Ordering::Relaxed);
        if last != 0 && now_ms < last + p_tick {
            return None;
        }
        self.last_tick_ms.store(now_ms, Ordering::Relaxed);
        let mut saturated = false;
        let mut lat_sum = 0.0;
        let mut lat_n = 0u64;
        let mut shed_now = [0u64; 5];
        let mut limits = Vec::new();
        for o in origins {
            o.admission.tick(cfg.enabled);
            let (inflight, waiting) = o.admission.load();
            saturated |= waiting > 0 && inflight >= o.admission.limit();
            let n = o.admission.last_samples.load(Ordering::Relaxed);
            lat_sum += o.admission.last_latency_us.load(Ordering::Relaxed) as f64 * n as f64;
            lat_n += n;
            for (i, s) in o.admission.shed.iter().enumerate() {
                shed_now[i] += s.load(Ordering::Relaxed);
            }
            limits.push(o.admission.limit());
        }
        let shed_tick: [u64; 5] = {
            let mut last = self
                .last_shed
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let d = std::array::from_fn(|i| shed_now[i].saturating_sub(last[i]));
            *last = shed_now;
            d
        };
        let requests = self.requests.swap(0, Ordering::Relaxed);
        let rules = self.rules.load_full();
        let matches: Vec<u64> = rules
            .hits
            .iter()
            .map(|h| h.swap(0, Ordering::Relaxed))
            .collect();
        let t = Tick {
            now_ms,
            requests,
            errors: self.errors.swap(0, Ordering::Relaxed),
            shed: shed_tick.iter().sum(),
            saturated,
            latency_ms: if lat_n > 0 {
                lat_sum / lat_n as f64 / 1000.0
            } else {
                0.0
            },
            new_clients: self.new_clients.swap(0, Ordering::Relaxed),
        };
        let (changes, new_rules, mode) = {
            let mut d = self.detector.lock().unwrap_or_else(PoisonError::into_inner);
            if !cfg.enabled {
                (Vec::new(), None, d.mode())
            } else {
                let c = d.tick(&t, &matches);
                let changed = c.iter().any(|c| !matches!(c, Change::Mode { .. }));
                (c, changed.then(|| d.rules().to_vec()), d.mode())
            }
        };
        if let Some(r) = new_rules {
            let hits = r.iter().map(|_| AtomicU64::new(0)).collect();
            self.rules.store(Arc::new(RuleSet { rules: r, hits }));
        }
        self.mode.store(mode_u8(mode), Ordering::Relaxed);
        let per_sec = requests * 1000 / p_tick.max(1);
        let every = (per_sec / u64::from(cfg.samples_per_second.max(1))).max(1);
        self.sample_every.store(every, Ordering::Relaxed);
        let mut shed = None;
        if shed_tick.iter().any(|&n| n > 0) {
            let by: serde_json::Map<String, serde_json::Value> = Class::ALL
                .iter()
                .filter(|c| shed_tick[**c as usize] > 0)
                .map(|c| (c.label().to_string(), shed_tick[*c as usize].into()))
                .collect();
            shed = Some(serde_json::json!({
                "requests": by,
                "tick_ms": p_tick,
                "origin_limits": limits,
                "mode": mode.label(),
            }));
        }
        // Forget clients first seen longer ago than `returning_ttl` (every 10 minutes).
        let rot = self.last_rotate_ms.load(Ordering::Relaxed);
        if now_ms >= rot + 600_000 {
            if rot != 0 {
                self.seen
                    .sweep(now_ms / 1000, cfg.returning_ttl.as_duration().as_secs());
            }
            self.last_rotate_ms.store(now_ms, Ordering::Relaxed);
        }
        Some(TickReport {
            mode,
            changes,
            shed,
        })
    }
}

/// What a site's tick changed.
pub(crate) struct TickReport {
    /// The mode after the tick.
    pub mode: Mode,
    /// Mode changes and rules added or expired, to publish as events.
    pub changes: Vec<Change>,
    /// Requests shed in the tick, by class (a `shed` event), if any.
    pub shed: Option<serde_json::Value>,
}
