//! The live egress view of a site's personal-data routes (tagged
//! `personal`, `special` or `export`): bytes and 2xx records served, per
//! class (metrics) and per client (a bounded table, `levee-limits::egress`),
//! and an `egress_outlier` event when one client takes an outlier share.
//! Clients appear as the access log writes them: pseudonyms when the log is
//! pseudonymised.
//!
//! Fed from the one record of each request (`pipeline::record`), for the
//! requests the pipeline classified (`Site::data_class`, on the normalised
//! path). It keeps its window across a reload that leaves `[site.egress]`
//! as it was.

use levee_limits::egress::{ClientEgress, Egress, EgressParams, Outlier};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Clients tracked per site.
const CAPACITY: usize = 256;

/// Which tag made a route count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    Personal,
    Export,
}

impl Class {
    pub(crate) const ALL: [Class; 2] = [Class::Personal, Class::Export];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Class::Personal => "personal",
            Class::Export => "export",
        }
    }
}

/// One site's egress accounting.
#[derive(Debug)]
pub(crate) struct SiteEgress {
    cfg: levee_config::Egress,
    table: Mutex<Egress>,
    bytes: [AtomicU64; 2],
    records: [AtomicU64; 2],
    pub outliers: AtomicU64,
}

impl SiteEgress {
    pub(crate) fn new(cfg: &levee_config::Egress) -> SiteEgress {
        SiteEgress {
            cfg: cfg.clone(),
            table: Mutex::new(Egress::new(EgressParams {
                window_ms: cfg.window.as_duration().as_millis() as u64,
                min_bytes: cfg.alert_bytes.0,
                min_records: u64::from(cfg.alert_records),
                share: cfg.alert_share,
                capacity: CAPACITY,
            })),
            bytes: Default::default(),
            records: Default::default(),
            outliers: AtomicU64::new(0),
        }
    }

    /// Whether a reload may keep this table.
    pub(crate) fn made_for(&self, cfg: &levee_config::Egress) -> bool {
        self.cfg == *cfg
    }

    /// Count one answer; an outlier it makes is returned (once per window).
    pub(crate) fn account(
        &self,
        now_ms: u64,
        class: Class,
        client: IpAddr,
        bytes: u64,
        status: u16,
    ) -> Option<Outlier> {
        let record = (200..300).contains(&status);
        self.bytes[class as usize].fetch_add(bytes, Ordering::Relaxed);
        if record {
            self.records[class as usize].fetch_add(1, Ordering::Relaxed);
        }
        let o = self
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(now_ms, client, bytes, record);
        if o.is_some() {
            self.outliers.fetch_add(1, Ordering::Relaxed);
        }
        o
    }

    /// Totals since start, per class: (bytes, records).
    pub(crate) fn totals(&self, class: Class) -> (u64, u64) {
        (
            self.bytes[class as usize].load(Ordering::Relaxed),
            self.records[class as usize].load(Ordering::Relaxed),
        )
    }

    /// The window now: its totals and heaviest clients.
    pub(crate) fn view(&self, now_ms: u64, n: usize) -> ((u64, u64), Vec<ClientEgress>) {
        let t = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        (t.totals(now_ms), t.top(now_ms, n))
    }

    pub(crate) fn window_s(&self) -> u64 {
        self.cfg.window.as_duration().as_secs()
    }
}

/// The site's routes that carry data, with their class (personal first: a
/// route tagged both counts as personal).
pub(crate) fn data_paths(site: &levee_config::Site) -> Vec<(String, Class)> {
    site.route
        .iter()
        .filter(|r| r.is_personal() || r.export)
        .flat_map(|r| {
            let c = if r.is_personal() {
                Class::Personal
            } else {
                Class::Export
            };
            r.paths.iter().map(move |p| (p.to_ascii_lowercase(), c))
        })
        .collect()
}

pub(crate) use levee_http::target::under_any_case as under;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_ignore_case() {
        assert!(under("/MEMBERS/12", "/members/"));
        assert!(under("/members", "/members/"));
        assert!(under("/Export.csv", "/export"));
        assert!(!under("/about", "/members/"));
        assert!(!under("/", "/members/"));
    }
}
