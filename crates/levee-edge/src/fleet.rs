//! The edge's side of fleet mode: what it hands the fleet engine (the
//! limiters' counts, its decisions, a heartbeat) and what it takes back
//! (the others' counts, their decisions, the number of live edges). The
//! engine (`levee-fleet`, wired by the binary) calls these from its own
//! thread; nothing here waits on the store, and a request only ever reads
//! local state (`FleetLink::share` on the rate-limit path).
//!
//! Decisions made here are noted where they are made (the admin API's
//! blocks and pins, automatic blocks, the defense's rules) and sent once;
//! decisions from other edges are applied without being noted again, so
//! nothing echoes round the fleet.

use crate::clock;
use levee_detect::Mode;
use levee_limits::fleet::{Decision, What};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

/// Decisions waiting for the engine, at most (oldest dropped first).
const OUTBOX: usize = 10_000;
/// How long a shared rule stays in the fleet's snapshot for edges that
/// join later (each edge then expires it when idle, as its own).
const RULE_TTL_MS: u64 = 600_000;
/// How long an unblock stays in the snapshot (longer than any block).
const UNBLOCK_TTL_MS: u64 = 31 * 86_400_000;
/// How long a pin stays in the snapshot.
const PIN_TTL_MS: u64 = 7 * 86_400_000;

/// Fleet state inside the edge (inert unless `Shared::join_fleet` ran).
#[derive(Debug, Default)]
pub(crate) struct FleetLink {
    pub(crate) on: AtomicBool,
    pub(crate) name: OnceLock<String>,
    pub(crate) outbox: Mutex<VecDeque<Decision>>,
    /// While on its own: the edges last seen live (the limit is shared by
    /// them); 0 while the fleet is reachable.
    pub(crate) share_of: AtomicU32,
    pub(crate) view: Mutex<(serde_json::Value, String)>,
}

impl FleetLink {
    /// The factor every limit is multiplied by (1 but on its own).
    pub(crate) fn share(&self) -> f64 {
        match self.share_of.load(Ordering::Relaxed) {
            0 | 1 => 1.0,
            n => 1.0 / f64::from(n),
        }
    }

    /// Note a decision made here, if in a fleet.
    pub(crate) fn note(&self, what: What, ttl_ms: u64) {
        if !self.on.load(Ordering::Relaxed) {
            return;
        }
        let now = clock::unix_ms();
        let d = Decision {
            origin: self.name.get().cloned().unwrap_or_default(),
            made_unix_ms: now,
            expires_unix_ms: now + ttl_ms,
            what,
        };
        let mut o = self.outbox.lock().unwrap_or_else(PoisonError::into_inner);
        if o.len() >= OUTBOX {
            o.pop_front();
        }
        o.push_back(d);
    }

    pub(crate) fn note_rule(&self, site: &str, r: &levee_detect::Rule, live: bool) {
        if r.from.is_some() {
            return;
        }
        self.note(
            What::Rule {
                site: site.to_string(),
                dim: r.dim.label().to_string(),
                key: r.key,
                value: r.value.clone(),
                action: r.action.label().to_string(),
            },
            if live { RULE_TTL_MS } else { 0 },
        );
    }

    pub(crate) fn note_block(&self, cidr: String, why: String, ttl_ms: u64) {
        self.note(What::Block { cidr, why }, ttl_ms);
    }

    pub(crate) fn note_unblock(&self, cidr: String) {
        self.note(What::Unblock { cidr }, UNBLOCK_TTL_MS);
    }

    pub(crate) fn note_pin(&self, site: &str, mode: Option<Mode>) {
        self.note(
            What::Pin {
                site: site.to_string(),
                mode: mode.map(|m| m.label().to_string()),
            },
            PIN_TTL_MS,
        );
    }

    /// `/status`'s `fleet` (null outside a fleet).
    pub(crate) fn status(&self) -> serde_json::Value {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .clone()
    }

    /// The engine's Prometheus text, and the edge's own fleet counter.
    pub(crate) fn metrics(&self, st: &crate::state::State) -> String {
        if !self.on.load(Ordering::Relaxed) {
            return String::new();
        }
        let dropped: u64 = st.sites.iter().map(|s| s.limits.dropped()).sum();
        let mut m = self
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1
            .clone();
        m.push_str(&format!(
            "# HELP levee_fleet_counts_dropped_total client counts not sent because a round's table was full (16384 keys per limiter)\n# TYPE levee_fleet_counts_dropped_total counter\nlevee_fleet_counts_dropped_total {dropped}\n"
        ));
        m
    }
}
