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

/// The fleet's shared certificates and answers (`[fleet]`), sealed with
/// the challenge secret.
struct Fleet(levee_fleet::CertShare);

impl levee_acme::Coordinator for Fleet {
    fn try_lock(&self, host: &str, ttl: std::time::Duration) -> Result<bool, String> {
        self.0.try_lock(host, ttl).map_err(|e| e.to_string())
    }
    fn unlock(&self, host: &str) {
        if let Err(e) = self.0.unlock(host) {
            eprintln!("levee: acme: {host}: the fleet's lock was not released ({e}); it expires by itself");
        }
    }
    fn fetch(&self, host: &str) -> Result<Option<levee_acme::Pem>, String> {
        self.0.fetch(host).map_err(|e| e.to_string())
    }
    fn publish(&self, host: &str, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        self.0
            .publish(host, chain_pem, key_pem)
            .map_err(|e| e.to_string())
    }
    fn post_answers(
        &self,
        host: &str,
        answers: &[levee_acme::Answer],
        ttl: std::time::Duration,
    ) -> Result<(), String> {
        let a: Vec<levee_fleet::Answer> = answers
            .iter()
            .map(|a| levee_fleet::Answer {
                kind: match a.challenge {
                    Challenge::TlsAlpn01 => "tls-alpn-01".into(),
                    _ => "http-01".into(),
                },
                token: a.token.clone(),
                key_authorization: a.key_authorization.clone(),
            })
            .collect();
        self.0
            .post_answers(host, &a, ttl)
            .map_err(|e| e.to_string())
    }
    fn answers(&self, host: &str) -> Result<Vec<levee_acme::Answer>, String> {
        let a = self.0.answers(host).map_err(|e| e.to_string())?;
        Ok(a.into_iter()
            .filter_map(|a| {
                let challenge = match a.kind.as_str() {
                    "tls-alpn-01" => Challenge::TlsAlpn01,
                    "http-01" => Challenge::Http01,
                    _ => return None,
                };
                Some(levee_acme::Answer {
                    challenge,
                    token: a.token,
                    key_authorization: a.key_authorization,
                })
            })
            .collect())
    }
}

/// The engine's settings, resolved from the configuration (with `fleet`:
/// one edge of the fleet orders each host's certificate, the others take it).
pub(crate) fn settings(
    cfg: &levee_config::Config,
    fleet: Option<&levee_fleet::Settings>,
) -> Result<Option<levee_acme::Settings>> {
    let Some(a) = cfg.tls.acme.as_ref() else {
        return Ok(None);
    };
    let coordinator: Option<Arc<dyn levee_acme::Coordinator>> = match fleet {
        None => None,
        Some(f) => {
            let secret = cfg.challenge.secret.as_deref().unwrap_or_default();
            let share = levee_fleet::CertShare::new(f.clone(), secret.as_bytes())
                .context("tls.acme with [fleet]: cannot set up the shared certificates")?;
            Some(Arc::new(Fleet(share)))
        }
    };
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
    Ok(Some(levee_acme::Settings {
        directory: a.directory.clone(),
        email: a.email.trim().to_string(),
        hosts: cfg.acme_hosts(),
        ca: a.ca.as_ref().map(PathBuf::from),
        state_dir: PathBuf::from(&a.state_dir),
        challenges,
        retry: a.retry.as_duration(),
        retry_max: a.retry_max.as_duration(),
        timeout: a.timeout.as_duration(),
        coordinator,
    }))
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
