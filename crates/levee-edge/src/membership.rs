//! The fleet engine's view of the edge (`Shared::join_fleet`, `fleet_*`):
//! what it hands the engine (counts, decisions, a heartbeat) and applies
//! from it (the others' counts and decisions, the number of live edges).
//! Called from the engine's thread; nothing here waits on the store. The
//! state these methods use is `fleet::FleetLink`.

use crate::clock;
use crate::Shared;
use levee_detect::{Action, Dim, Mode};
use levee_limits::fleet::{CounterDelta, CounterTotal, Decision, What};
use std::sync::atomic::Ordering;
use std::sync::PoisonError;

impl Shared {
    /// Take part in a fleet under `name`: decisions are noted from now on,
    /// and the fleet engine may call the `fleet_*` methods.
    pub fn join_fleet(&self, name: &str) {
        let _ = self.fleet.name.set(name.to_string());
        self.fleet.on.store(true, Ordering::Relaxed);
    }

    /// Every limiter's counts since the last call.
    pub fn fleet_take_counts(&self) -> Vec<CounterDelta> {
        let st = self.state.load();
        let mut out = Vec::new();
        for s in &st.sites {
            s.limits.take_counts(&s.name, &mut out);
        }
        out
    }

    /// What the rest of the fleet counted.
    pub fn fleet_apply_totals(&self, totals: &[CounterTotal]) {
        let st = self.state.load();
        for s in &st.sites {
            let mine: Vec<&CounterTotal> = totals.iter().filter(|t| t.site == s.name).collect();
            if !mine.is_empty() {
                s.limits.apply_totals(&mine);
            }
        }
    }

    /// Decisions made here since the last call.
    pub fn fleet_take_decisions(&self) -> Vec<Decision> {
        std::mem::take(
            &mut *self
                .fleet
                .outbox
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
        .into()
    }

    /// Apply another edge's decision; `Err` says why it does not apply here.
    pub fn fleet_apply(&self, d: &Decision) -> Result<(), String> {
        let now_unix = clock::unix_ms();
        let left_ms = d.expires_unix_ms.saturating_sub(now_unix);
        match &d.what {
            What::Block { cidr, why } => {
                let c = cidr_of(cidr)?;
                let added = self
                    .lists
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .block(c, clock::now_ms() + left_ms, d.expires_unix_ms);
                if !added {
                    return Err("the dynamic block list is full ([lists] max_dynamic)".into());
                }
                self.events.push(
                    "block",
                    "",
                    serde_json::json!({"cidr": c.to_string(), "ttl_s": left_ms / 1000, "why": why, "from": d.origin}),
                );
            }
            What::Unblock { cidr } => {
                let c = cidr_of(cidr)?;
                self.lists
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .unblock(c);
            }
            What::Rule {
                site,
                dim,
                key,
                value,
                action,
            } => {
                let st = self.state.load();
                let s = site_named(&st, site)?;
                let dim = Dim::parse(dim).ok_or_else(|| format!("unknown dimension {dim:?}"))?;
                let action =
                    Action::parse(action).ok_or_else(|| format!("unknown action {action:?}"))?;
                if let Some(rule) =
                    s.defense
                        .import_rule(dim, *key, value, action, &d.origin, clock::now_ms())
                {
                    self.events.push(
                        "rule_added",
                        site,
                        serde_json::json!({ "rule": rule, "from": d.origin }),
                    );
                }
            }
            What::Pin { site, mode } => {
                let st = self.state.load();
                let s = site_named(&st, site)?;
                let pin = match mode.as_deref() {
                    None => None,
                    Some(m) => Some(Mode::parse(m).ok_or_else(|| format!("unknown mode {m:?}"))?),
                };
                for c in s.defense.pin(pin) {
                    self.publish(site, &c);
                }
            }
        }
        Ok(())
    }

    /// Live edges (this one included); `degraded`: on its own, enforcing
    /// `1 / live` of each limit.
    pub fn fleet_set_edges(&self, live: u32, degraded: bool) {
        self.fleet
            .share_of
            .store(if degraded { live.max(1) } else { 0 }, Ordering::Relaxed);
        let st = self.state.load();
        for s in &st.sites {
            s.limits.set_edges(live.max(1));
        }
    }

    /// What this edge tells the fleet: its sites' modes and rules.
    pub fn fleet_heartbeat(&self) -> serde_json::Value {
        let st = self.state.load();
        let sites: serde_json::Map<String, serde_json::Value> = st
            .sites
            .iter()
            .map(|s| (s.name.clone(), s.defense.summary()))
            .collect();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "sites": sites,
            "degraded": self.fleet.share_of.load(Ordering::Relaxed) > 0,
        })
    }

    /// The engine's state for `/status` and its Prometheus text for `/metrics`.
    pub fn fleet_show(&self, status: serde_json::Value, metrics: String) {
        *self
            .fleet
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = (status, metrics);
    }
}

/// A site of this edge by name (a decision from another edge names one).
fn site_named<'a>(
    st: &'a crate::state::State,
    name: &str,
) -> Result<&'a std::sync::Arc<crate::state::Site>, String> {
    st.sites
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| format!("no site {name:?} here"))
}

/// A decision's CIDR, or why not.
fn cidr_of(text: &str) -> Result<levee_config::Cidr, String> {
    text.parse().map_err(|_| format!("{text:?} is not a CIDR"))
}
