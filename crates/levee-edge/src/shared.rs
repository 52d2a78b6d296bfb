//! What every task of the edge shares: the current state (swapped on
//! reload), metrics, the access log, connection counts, marks, block lists,
//! the challenge's spent set, events, and the shutdown signal; and the
//! periodic work done over it (the defense tick, the packet filter's view).

use crate::accesslog::{self, Verdict};
use crate::clock;
use crate::lists::{FilterView, ViewKey};
use crate::metrics::{self, Metrics};
use crate::state::State;
use crate::{events, lists};
use arc_swap::ArcSwap;
use levee_config::Config;
use levee_detect::{Change, Mode};
use levee_limits::{ConnCaps, ConnTracker, Marks};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::watch;

/// Re-reads the configuration for a reload (SIGHUP or the admin API).
pub type Loader = Box<dyn Fn() -> Result<Config, String> + Send + Sync>;

/// State shared by every task of the edge.
pub struct Shared {
    pub(crate) state: ArcSwap<State>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) log: accesslog::AccessLog,
    pub(crate) tracker: Arc<ConnTracker>,
    /// Requests in flight per client address and prefix (forwarded, or
    /// still being answered to a slow reader), bounded by `flight_caps`.
    pub(crate) in_flight: Arc<ConnTracker>,
    pub(crate) marks: Mutex<Marks>,
    /// Block and allow lists, consulted at accept.
    pub(crate) lists: std::sync::RwLock<lists::Lists>,
    /// Used challenge solutions (replay protection), bounded.
    pub(crate) spent: Mutex<levee_challenge::SpentSet>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Set with `shutdown`; cheap to read on every request.
    pub(crate) stopping: std::sync::atomic::AtomicBool,
    pub(crate) started: Instant,
    /// Mode changes, rules, automatic blocks, shedding (`/events`).
    pub(crate) events: events::Events,
    /// Some site is under attack: connection-level knobs are tightened.
    pub(crate) tightened: std::sync::atomic::AtomicBool,
    pub(crate) listen: Vec<SocketAddr>,
    /// Prometheus text other parts of the process publish for `/metrics`
    /// (the packet filter's counters, written by the binary's feeder).
    pub(crate) extra_metrics: Mutex<String>,
    pub(crate) generation: AtomicU64,
    /// Fleet mode's state (inert outside a fleet).
    pub(crate) fleet: crate::fleet::FleetLink,
    /// Outside sources' captchas and health (`[crowdsec]`).
    pub(crate) sources: crate::sources::Sources,
    /// Incident records (`[incidents]`).
    pub(crate) incidents: crate::incidents::Incidents,
    pub(crate) loader: Option<Loader>,
    pub(crate) reload_lock: Mutex<()>,
}

impl Shared {
    /// Record an event (`/events`, and standard error if configured).
    pub fn event(&self, kind: &str, site: &str, fields: serde_json::Value) -> u64 {
        self.events.push(kind, site, fields)
    }

    /// Prometheus text another part of the process publishes on `/metrics`
    /// (the packet filter's counters, from the binary's feeder).
    pub fn set_extra_metrics(&self, text: String) {
        *self
            .extra_metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = text;
    }

    /// What the packet filter's view depends on (see [`ViewKey`]).
    pub fn view_key(&self) -> ViewKey {
        let shared = self;
        let st = shared.state.load();
        ViewKey {
            seq: shared
                .lists
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .seq(),
            generation: st.generation,
            prefix_rules: st.sites.iter().any(|s| s.defense.has_prefix_block_rules()),
        }
    }

    /// Gather the edge's block decisions for the packet filter: static lists
    /// (with list files), admin-API, automatic and outside sources' blocks
    /// with their expiry, and
    /// the adaptive defense's `block` rules on client prefixes (held for
    /// `rule_idle`, renewed while the rule lives).
    pub fn filter_view(&self) -> FilterView {
        let shared = self;
        use std::time::Duration;
        let st = shared.state.load();
        let now = crate::clock::now_ms();
        let mut v = FilterView::default();
        for c in &st.cfg.lists.block {
            v.blocks.push((c.addr(), c.prefix_len(), None));
        }
        for c in &st.cfg.lists.allow {
            v.allow.push((c.addr(), c.prefix_len()));
        }
        let (dynamic, sourced) = {
            let l = shared
                .lists
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (l.dynamic_nets(), l.sourced_nets())
        };
        for (ip, len, exp) in dynamic.into_iter().chain(sourced) {
            if exp > now {
                let left = (exp != u64::MAX).then(|| Duration::from_millis(exp - now));
                v.blocks.push((ip, len, left));
            }
        }
        for site in &st.sites {
            let hold = site.defense_cfg.rule_idle.as_duration();
            for c in site.defense.block_prefixes() {
                v.blocks.push((c.addr(), c.prefix_len(), Some(hold)));
            }
        }
        v
    }

    /// Write a detector change as an event.
    pub fn publish(&self, site: &str, c: &Change) {
        let shared = self;
        match c {
            Change::Mode { from, to, why } => shared.events.push(
                "mode",
                site,
                serde_json::json!({"from": from.label(), "to": to.label(), "why": why}),
            ),
            Change::RuleAdded { rule } => {
                shared.fleet.note_rule(site, rule, true);
                shared
                    .events
                    .push("rule_added", site, serde_json::json!({ "rule": rule }))
            }
            Change::RuleExpired { rule } => {
                shared.fleet.note_rule(site, rule, false);
                shared
                    .events
                    .push("rule_expired", site, serde_json::json!({ "rule": rule }))
            }
        };
    }

    /// Tick every site whose tick is due; tighten connection caps while any site is under attack.
    pub fn tick(&self, tightened: &mut bool) {
        let shared = self;
        let state = shared.state.load();
        let now = crate::clock::now_ms();
        let mut attack = false;
        for site in &state.sites {
            let Some(report) = site.defense.tick(&site.origins, &site.defense_cfg, now) else {
                attack |= site.defense.mode() == Mode::UnderAttack;
                continue;
            };
            for c in &report.changes {
                shared.publish(&site.name, c);
            }
            if let Some(shed) = report.shed {
                shared.events.push("shed", &site.name, shed);
            }
            let m = report.mode;
            attack |= m == Mode::UnderAttack;
        }
        if attack != *tightened {
            *tightened = attack;
            shared.tightened.store(attack, Ordering::Relaxed);
            let mut caps = caps(&state.cfg);
            if attack {
                caps.per_ip = (caps.per_ip / 2).max(1);
                caps.per_prefix = (caps.per_prefix / 2).max(1);
            }
            shared.tracker.set_caps(caps);
            shared.events.push(
                "knobs",
                "",
                serde_json::json!({
                    "tightened": attack,
                    "max_connections_per_ip": caps.per_ip,
                    "max_connections_per_prefix": caps.per_prefix,
                    "header_timeout_factor": if attack { 0.5 } else { 1.0 },
                    "h2_max_concurrent_streams_cap": if attack { Some(32) } else { None },
                }),
            );
        }
    }

    /// Re-read and apply the configuration. In-flight requests and open
    /// connections keep going; new requests see the new state. Listener
    /// addresses and the admin address need a restart to change.
    pub fn reload(&self) -> Result<u64, String> {
        let _g = self
            .reload_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            let loader = self
                .loader
                .as_ref()
                .ok_or("this edge has no configuration file to reload")?;
            let cfg = loader()?;
            if cfg.fleet != self.state.load().cfg.fleet {
                return Err("[fleet] changed: fleet settings take effect at a restart".into());
            }
            if cfg.tls.acme != self.state.load().cfg.tls.acme {
                return Err("[tls.acme] changed: ACME settings take effect at a restart".into());
            }
            let gen = self.generation.load(Ordering::Relaxed) + 1;
            let old = self.state.load();
            let st = State::build(cfg, Some(&old), gen).map_err(|e| e.to_string())?;
            self.tracker.set_caps(caps(&st.cfg));
            self.in_flight.set_caps(flight_caps(&st.cfg));
            self.lists
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .reconfigure(&st.cfg.lists);
            self.state.store(Arc::new(st));
            self.generation.store(gen, Ordering::Relaxed);
            Ok(gen)
        })();
        // Reopen the access log either way: a reload is how rotation is signalled.
        self.log.reopen();
        match &result {
            Ok(_) => self.metrics.reloads.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.metrics.reload_failures.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    /// Remember that `ip` misbehaved (a protocol flood).
    pub fn mark(&self, ip: std::net::IpAddr, reason: &'static str) {
        self.metrics.clients_marked.fetch_add(1, Ordering::Relaxed);
        self.marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .mark(ip, reason, clock::now_ms());
    }

    /// Count a refusal that happened before any request (a connection cap, a
    /// handshake deadline, a protocol flood) and write its access-log line.
    pub fn refuse_connection(
        &self,
        ip: std::net::IpAddr,
        reason: metrics::Reason,
        tls: Option<&'static str>,
        proto: &'static str,
    ) {
        self.metrics.defend(reason);
        self.log.log(&accesslog::LogLine {
            ts_ms: clock::unix_ms(),
            client: ip,
            site: "",
            method: "",
            path: "",
            status: 0,
            bytes_in: 0,
            bytes_out: 0,
            duration_us: 0,
            origin_us: None,
            verdict: Verdict::Block,
            reason: reason.label(),
            tls,
            ja4: None,
            h2fp: None,
            proto,
            request_id: "",
        });
    }

    /// Whether `ip` is on a block list (and not allow-listed).
    pub fn is_blocked(&self, ip: std::net::IpAddr) -> bool {
        self.lists
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .blocked(ip, clock::now_ms())
    }

    /// Whether a protocol defense marked `ip` abusive.
    pub fn is_marked(&self, ip: std::net::IpAddr) -> bool {
        self.marks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(ip)
            .is_some()
    }

    pub fn shutting_down(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }
}

/// The caps on requests in flight per client (0 in the configuration: none).
pub(crate) fn flight_caps(cfg: &Config) -> ConnCaps {
    let or_max = |n: u32| if n == 0 { u32::MAX } else { n };
    ConnCaps {
        global: u32::MAX,
        per_ip: or_max(cfg.limits.max_requests_in_flight_per_ip),
        per_prefix: or_max(cfg.limits.max_requests_in_flight_per_prefix),
    }
}

pub(crate) fn caps(cfg: &Config) -> ConnCaps {
    ConnCaps {
        global: cfg.limits.max_connections,
        per_ip: cfg.limits.max_connections_per_ip,
        per_prefix: cfg.limits.max_connections_per_prefix,
    }
}
