//! `[tls.acme]`: the ACME engine (`levee-acme`) wired to the edge: its
//! certificates and validation answers go through the edge's `acme_*`
//! calls, on a thread of its own, started with the edge (a change of
//! `[tls.acme]` needs a restart).

use anyhow::{Context, Result};
use levee_acme::Challenge;
use levee_config::AcmeChallenge;
use levee_edge::Shared;
use std::path::PathBuf;
use std::sync::Arc;

struct Edge(Arc<Shared>);

impl levee_acme::Edge for Edge {
    fn install(&self, host: &str, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        self.0.acme_install(host, chain_pem, key_pem).map(|_| ())
    }
    fn alpn(&self, host: &str, answer: Option<(Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        self.0.acme_alpn(host, answer)
    }
    fn http01(&self, token: &str, answer: Option<(&str, &str)>) {
        self.0.acme_http01(token, answer);
    }
    fn event(&self, fields: serde_json::Value) {
        self.0.source_event("acme", fields);
    }
    fn health(&self, status: serde_json::Value, metrics: String) {
        self.0.set_source_health("acme", status, metrics);
    }
}

/// The engine's settings, resolved from the configuration.
pub(crate) fn settings(cfg: &levee_config::Config) -> Option<levee_acme::Settings> {
    let a = cfg.tls.acme.as_ref()?;
    let tls = cfg.listener.iter().any(|l| l.tls);
    let plain = cfg.listener.iter().any(|l| !l.tls);
    let challenges = match a.challenge {
        AcmeChallenge::TlsAlpn01 => vec![Challenge::TlsAlpn01],
        AcmeChallenge::Http01 => vec![Challenge::Http01],
        AcmeChallenge::Auto => {
            let mut v = Vec::new();
            if tls {
                v.push(Challenge::TlsAlpn01);
            }
            if plain {
                v.push(Challenge::Http01);
            }
            v
        }
    };
    Some(levee_acme::Settings {
        directory: a.directory.clone(),
        email: a.email.trim().to_string(),
        hosts: cfg.acme_hosts(),
        ca: a.ca.as_ref().map(PathBuf::from),
        state_dir: PathBuf::from(&a.state_dir),
        challenges,
        retry: a.retry.as_duration(),
        retry_max: a.retry_max.as_duration(),
        timeout: a.timeout.as_duration(),
        coordinator: None,
    })
}

/// Serve the stored certificates, then order and renew on a thread of its own.
pub(crate) fn start(s: Option<levee_acme::Settings>, shared: &Arc<Shared>) -> Result<()> {
    let Some(s) = s else {
        return Ok(());
    };
    let (dir, hosts) = (s.directory.clone(), s.hosts.join(", "));
    let state = s.state_dir.display().to_string();
    levee_acme::start(s, Arc::new(Edge(Arc::clone(shared))))
        .with_context(|| format!("tls.acme: cannot use the state directory {state}"))?;
    eprintln!("levee: acme: certificates for {hosts} from {dir} (state in {state})");
    Ok(())
}
