//! Decisions from outside sources (a CrowdSec Local API, through the
//! binary's bouncer): bans join the block list apart from the operator's
//! and the defense's (`Lists::block_sourced`; in the packet filter's view
//! too), captchas send the client to the challenge (`sources`).
//! Called from the source's own thread; nothing here waits on the source.

use crate::clock;
use crate::Shared;
use std::net::IpAddr;
use std::sync::PoisonError;
use std::time::Duration;

fn cidr(ip: IpAddr, len: u8) -> Option<levee_config::Cidr> {
    levee_config::Cidr::new(ip, len)
}

impl Shared {
    /// Block `ip/len` for `ttl` on an outside source's decision; `false`
    /// if the prefix is invalid or the dynamic block list is full.
    pub fn source_ban(&self, ip: IpAddr, len: u8, ttl: Duration) -> bool {
        let Some(c) = cidr(ip, len) else {
            return false;
        };
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        self.lists
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .block_sourced(
                c,
                clock::now_ms().saturating_add(ms),
                clock::unix_ms().saturating_add(ms),
            )
    }

    /// Lift a block an outside source had asked for.
    pub fn source_unban(&self, ip: IpAddr, len: u8) -> bool {
        cidr(ip, len).is_some_and(|c| {
            self.lists
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .unblock_sourced(c)
        })
    }

    /// Challenge `ip/len` for `ttl` (on sites whose challenge is not off).
    pub fn source_challenge(&self, ip: IpAddr, len: u8, ttl: Duration) -> bool {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        cidr(ip, len).is_some()
            && self
                .sources
                .captcha
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(ip, len, clock::now_ms().saturating_add(ms))
    }

    pub fn source_unchallenge(&self, ip: IpAddr, len: u8) -> bool {
        self.sources
            .captcha
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(ip, len)
    }

    /// One event for what a source changed (`/events`, incident records).
    pub fn source_event(&self, source: &str, fields: serde_json::Value) {
        self.events.push(source, "", fields);
    }

    /// A source's health: a JSON object for `/status` (under `sources`)
    /// and Prometheus lines for `/metrics`.
    pub fn set_source_health(&self, source: &str, status: serde_json::Value, metrics: String) {
        self.sources
            .health
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(source.to_string(), (status, metrics));
    }
}

impl Shared {
    /// The edge's own automatic blocks (its adaptive defense's, not an
    /// operator's, another edge's or a source's) among the events after
    /// `since`, as (cidr, time to live, why, site), and the last event's
    /// number.
    pub fn own_blocks_since(&self, since: u64) -> (Vec<(String, Duration, String, String)>, u64) {
        let (lines, last) = self.events.since(since, crate::events::CAPACITY);
        let mut out = Vec::new();
        for l in lines {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&l) else {
                continue;
            };
            let own = v["event"] == "block"
                && v["added"] == true
                && v.get("by").is_none()
                && v.get("from").is_none();
            if let (true, Some(cidr)) = (own, v["cidr"].as_str()) {
                out.push((
                    cidr.to_string(),
                    Duration::from_secs(v["ttl_s"].as_u64().unwrap_or(0)),
                    v["why"].as_str().unwrap_or("").to_string(),
                    v["site"].as_str().unwrap_or("").to_string(),
                ));
            }
        }
        (out, last)
    }
}
