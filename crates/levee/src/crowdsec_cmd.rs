//! `[crowdsec]`: the CrowdSec bouncer (`levee-crowdsec`) wired to the edge:
//! its decisions go through the edge's `source_*` calls, on a thread of
//! its own, started with the edge (a change of `[crowdsec]` needs a restart).

use anyhow::{Context, Result};
use levee_edge::Shared;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

struct Edge(Arc<Shared>);

impl levee_crowdsec::Edge for Edge {
    fn ban(&self, addr: IpAddr, len: u8, ttl: Duration) -> bool {
        self.0.source_ban(addr, len, ttl)
    }
    fn unban(&self, addr: IpAddr, len: u8) -> bool {
        self.0.source_unban(addr, len)
    }
    fn challenge(&self, addr: IpAddr, len: u8, ttl: Duration) -> bool {
        self.0.source_challenge(addr, len, ttl)
    }
    fn unchallenge(&self, addr: IpAddr, len: u8) -> bool {
        self.0.source_unchallenge(addr, len)
    }
    fn event(&self, fields: serde_json::Value) {
        self.0.source_event("crowdsec", fields);
    }
    fn health(&self, status: serde_json::Value, metrics: String) {
        self.0.set_source_health("crowdsec", status, metrics);
    }
    fn own_blocks_since(&self, since: u64) -> (Vec<levee_crowdsec::OwnBlock>, u64) {
        let (blocks, last) = self.0.own_blocks_since(since);
        (
            blocks
                .into_iter()
                .map(|(cidr, ttl, why, site)| levee_crowdsec::OwnBlock {
                    cidr,
                    ttl,
                    why,
                    site,
                })
                .collect(),
            last,
        )
    }
}

/// The bouncer's settings, read before the edge starts (so that a missing
/// key file stops the start with its name).
pub(crate) fn settings(cfg: &levee_config::Config) -> Result<Option<levee_crowdsec::Config>> {
    let Some(c) = &cfg.crowdsec else {
        return Ok(None);
    };
    let api_key = match (&c.api_key, &c.api_key_file) {
        (Some(k), _) => k.trim().to_string(),
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("crowdsec.api_key_file: cannot read {f}"))?
            .trim()
            .to_string(),
        (None, None) => anyhow::bail!("crowdsec.api_key: give the bouncer's key"),
    };
    let ca_pem = match &c.ca {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("crowdsec.ca: cannot read {p}"))?),
        None => None,
    };
    let push = if c.push_blocks {
        let password = match (&c.password, &c.password_file) {
            (Some(p), _) => p.clone(),
            (None, Some(f)) => std::fs::read_to_string(f)
                .with_context(|| format!("crowdsec.password_file: cannot read {f}"))?
                .trim()
                .to_string(),
            (None, None) => anyhow::bail!("crowdsec.push_blocks: give password or password_file"),
        };
        Some(levee_crowdsec::Push {
            machine_id: c.machine_id.clone().unwrap_or_default(),
            password,
        })
    } else {
        None
    };
    Ok(Some(levee_crowdsec::Config {
        lapi: c.lapi.trim_end_matches('/').to_string(),
        api_key,
        poll: c.poll.as_duration(),
        timeout: c.timeout.as_duration(),
        ca_pem,
        max_decisions: c.max_decisions as usize,
        push,
    }))
}

/// Follow the Local API on a thread of its own.
pub(crate) fn start(s: Option<levee_crowdsec::Config>, shared: &Arc<Shared>) -> Result<()> {
    let Some(s) = s else {
        return Ok(());
    };
    let lapi = s.lapi.clone();
    let bouncer = levee_crowdsec::Bouncer::new(s)?;
    let edge = Edge(Arc::clone(shared));
    static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::thread::Builder::new()
        .name("levee-crowdsec".into())
        .spawn(move || bouncer.run(&edge, &STOP))
        .context("cannot start the CrowdSec bouncer's thread")?;
    eprintln!("levee: crowdsec: bouncer of {lapi}");
    Ok(())
}
