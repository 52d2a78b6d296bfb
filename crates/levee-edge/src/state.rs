//! The edge's run-time state, built from a [`Config`]: sites by host, origins
//! with their connection pools and health, the TLS configuration and the
//! parser limits. A reload builds a new `State` and swaps it in atomically;
//! requests in flight keep the state they started with. Origins whose settings
//! did not change are carried over with their pools and health.

use crate::upstream::{Origin, OriginSet};
use levee_config::Config;
use levee_http::h1::HeadLimits;
use levee_http::h2meter::FloodLimits;
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

pub(crate) use crate::error::BuildError;

/// A protected site.
#[derive(Debug)]
pub(crate) struct Site {
    pub name: String,
    pub challenge: levee_config::SiteChallenge,
    pub limits: Arc<crate::ratelimit::SiteLimits>,
    /// What a browser over a rate limit gets.
    pub over_limit: levee_config::OverLimit,
    /// Path prefixes (lower-case) of routes tagged personal, export, login
    /// or admin: never cached.
    pub private_paths: Vec<String>,
    /// Path prefixes (lower-case) of routes that carry personal data, with
    /// their class: their answers feed the egress view.
    pub data_paths: Vec<(String, crate::egress::Class)>,
    pub egress: Arc<crate::egress::SiteEgress>,
    /// Detection state (kept across reloads) and its configuration.
    pub defense: Arc<crate::defense::SiteDefense>,
    pub defense_cfg: levee_config::Defense,
    /// Micro-cache, when `[site.cache] enabled`.
    pub cache: Option<Arc<crate::cache::SiteCache>>,
    pub origins: OriginSet,
    pub requests: AtomicU64,
    /// This second's outcomes, for incident records (kept across reloads).
    pub tally: Arc<crate::tally::Tally>,
    /// Edge-owned forwarding fields this site's origin may receive from untrusted clients.
    pub allow_client_headers: Vec<String>,
}

/// Everything a connection needs to serve requests.
#[derive(Debug)]
pub(crate) struct State {
    pub cfg: Config,
    pub generation: u64,
    pub sites: Vec<Arc<Site>>,
    hosts: HashMap<String, usize>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// ACME's certificates and validation answers (one for the process:
    /// handed from each state to the next on reload).
    pub live: Arc<crate::tls::LiveCerts>,
    /// The file certificates' names and expiry (Unix seconds).
    pub file_expiry: Vec<(String, i64)>,
    /// The names `[tls.acme]` certifies (their HTTP-01 path is the edge's).
    pub acme_hosts: Vec<String>,
    pub head_limits: HeadLimits,
    pub flood: FloodLimits,
    /// Challenge and clearance keys.
    pub keys: levee_challenge::Keyring,
    pub challenge_ttl_s: u64,
}

/// The master secret when the configuration gives none: random, once per process.
fn process_secret() -> &'static [u8; 32] {
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    SECRET.get_or_init(|| {
        let mut s = [0u8; 32];
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut s);
        s
    })
}

impl Site {
    /// Whether the normalised `path` is under a route never cached.
    pub(crate) fn is_private(&self, path: &str) -> bool {
        self.private_paths
            .iter()
            .any(|p| crate::egress::under(path, p))
    }

    /// The data class of the normalised `path`, if a tagged route holds it.
    pub(crate) fn data_class(&self, path: &str) -> Option<crate::egress::Class> {
        self.data_paths
            .iter()
            .find(|(p, _)| crate::egress::under(path, p))
            .map(|(_, c)| *c)
    }
}

impl State {
    /// Build from a validated configuration. `prev` lends unchanged origins.
    pub(crate) fn build(
        mut cfg: Config,
        prev: Option<&State>,
        generation: u64,
    ) -> Result<State, BuildError> {
        // CIDR list files join the static lists.
        for (key, files) in [
            ("lists.block_files", cfg.lists.block_files.clone()),
            ("lists.allow_files", cfg.lists.allow_files.clone()),
        ] {
            for f in files {
                let name = f.display().to_string();
                let text = std::fs::read_to_string(&f).map_err(|e| BuildError::Read {
                    path: key.to_string(),
                    file: name.clone(),
                    source: e,
                })?;
                let v = levee_config::parse_cidr_list(&text, &name).map_err(|m| {
                    BuildError::Invalid {
                        path: key.to_string(),
                        message: m,
                    }
                })?;
                if key == "lists.block_files" {
                    cfg.lists.block.extend(v);
                } else {
                    cfg.lists.allow.extend(v);
                }
            }
        }
        let live = prev.map_or_else(Default::default, |p| Arc::clone(&p.live));
        let acme_hosts = cfg.acme_hosts();
        let (tls, file_expiry) = if cfg.tls.certificate.is_empty() && cfg.tls.acme.is_none() {
            (None, Vec::new())
        } else {
            let acme = cfg.tls.acme.as_ref().map(|_| Arc::clone(&live));
            let (c, e) = crate::tls::server_config(&cfg.tls, acme)?;
            (Some(c), e)
        };
        let mut old: HashMap<String, Arc<Origin>> = HashMap::new();
        let mut old_def: HashMap<String, Arc<crate::defense::SiteDefense>> = HashMap::new();
        let mut old_cache: HashMap<String, Arc<crate::cache::SiteCache>> = HashMap::new();
        let mut old_limits: HashMap<String, Arc<crate::ratelimit::SiteLimits>> = HashMap::new();
        let mut old_egress: HashMap<String, Arc<crate::egress::SiteEgress>> = HashMap::new();
        let mut old_tally: HashMap<String, Arc<crate::tally::Tally>> = HashMap::new();
        if let Some(p) = prev {
            for s in &p.sites {
                old_egress.insert(s.name.clone(), Arc::clone(&s.egress));
                old_tally.insert(s.name.clone(), Arc::clone(&s.tally));
                old_limits.insert(s.name.clone(), Arc::clone(&s.limits));
                if let Some(c) = &s.cache {
                    old_cache.insert(s.name.clone(), Arc::clone(c));
                }
                old_def.insert(s.name.clone(), Arc::clone(&s.defense));
                for o in s.origins.iter() {
                    old.insert(o.key().to_string(), Arc::clone(o));
                }
            }
        }
        let mut sites = Vec::new();
        let mut hosts = HashMap::new();
        let secret = process_secret();
        let seed =
            |i: usize| u64::from_le_bytes(secret[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        let seeds = [seed(0), seed(1), seed(2), seed(3)];
        for (si, s) in cfg.site.iter().enumerate() {
            let mut origins = Vec::new();
            for (oi, o) in s.origin.iter().enumerate() {
                let key = Origin::key_for(s, o);
                let origin = match old.get(&key) {
                    Some(existing) => Arc::clone(existing),
                    None => Origin::new(s, o, key, &format!("site[{si}].origin[{oi}]"))?,
                };
                origins.push(origin);
            }
            for h in &s.hosts {
                hosts.insert(normalize_host(h.as_bytes()), si);
            }
            sites.push(Arc::new(Site {
                name: s.name.clone(),
                challenge: s.challenge.clone(),
                // Counters survive a reload that keeps the site's limits.
                limits: match old_limits.get(&s.name) {
                    Some(l) if l.made_for(s) => Arc::clone(l),
                    _ => Arc::new(crate::ratelimit::SiteLimits::new(
                        s,
                        seeds,
                        cfg.fleet.is_some(),
                    )),
                },
                over_limit: s.rate_limit.over,
                private_paths: s
                    .route
                    .iter()
                    .filter(|r| r.private())
                    .flat_map(|r| r.paths.iter().map(|p| p.to_ascii_lowercase()))
                    .collect(),
                data_paths: crate::egress::data_paths(s),
                tally: old_tally.get(&s.name).cloned().unwrap_or_default(),
                egress: match old_egress.get(&s.name) {
                    Some(e) if e.made_for(&s.egress) => Arc::clone(e),
                    _ => Arc::new(crate::egress::SiteEgress::new(&s.egress)),
                },
                defense: match old_def.get(&s.name) {
                    Some(d) => {
                        d.reconfigure(&s.defense);
                        Arc::clone(d)
                    }
                    None => Arc::new(crate::defense::SiteDefense::new(&s.defense, seeds)),
                },
                defense_cfg: s.defense.clone(),
                cache: s.cache.enabled.then(|| match old_cache.get(&s.name) {
                    Some(c) if format!("{:?}", c.config()) == format!("{:?}", s.cache) => {
                        Arc::clone(c)
                    }
                    _ => crate::cache::SiteCache::new(&s.cache),
                }),
                origins: OriginSet::new(origins, s.balance),
                requests: AtomicU64::new(0),
                allow_client_headers: s.allow_client_headers.clone(),
            }));
        }
        let l = &cfg.limits;
        let head_limits = HeadLimits {
            max_head_bytes: l.max_header_bytes.0 as usize,
            max_headers: l.max_headers as usize,
            max_uri_bytes: l.max_uri_bytes.0 as usize,
        };
        let h = &cfg.http2;
        let flood = FloodLimits {
            window_ms: h.flood_window.as_duration().as_millis() as u64,
            max_rst: h.max_rst_frames,
            max_ping: h.max_ping_frames,
            max_settings: h.max_settings_frames,
            max_empty_data: h.max_empty_data_frames,
            max_window_update: h.max_window_update_frames,
            max_continuation: h.max_continuation_frames,
        };
        let keys = levee_challenge::Keyring::new(
            cfg.challenge
                .secret
                .as_deref()
                .map_or(&process_secret()[..], str::as_bytes),
            cfg.challenge.key_period.as_duration().as_secs(),
        );
        let challenge_ttl_s = cfg.challenge.ttl.as_duration().as_secs();
        Ok(State {
            keys,
            challenge_ttl_s,
            cfg,
            generation,
            sites,
            hosts,
            tls,
            live,
            file_expiry,
            acme_hosts,
            head_limits,
            flood,
        })
    }

    /// The site serving `host` (case-insensitive, port and trailing dot ignored).
    pub(crate) fn site_for_host(&self, host: &[u8]) -> Option<&Arc<Site>> {
        let h = normalize_host(host);
        self.site_for_name(&h)
    }

    /// The site serving `name`, already normalised (`levee_http::host::Host::name`).
    pub(crate) fn site_for_name(&self, name: &str) -> Option<&Arc<Site>> {
        self.hosts.get(name).and_then(|&i| self.sites.get(i))
    }
}

/// Lower-case, strip a port and a trailing dot.
pub(crate) fn normalize_host(host: &[u8]) -> String {
    let s = String::from_utf8_lossy(host).to_ascii_lowercase();
    let s = if s.starts_with('[') {
        match s.find(']') {
            Some(e) => s[..=e].to_string(),
            None => s,
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, _)) => h.to_string(),
            None => s,
        }
    };
    s.trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(balance: &str) -> State {
        let text = format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\n[[site]]\nname = \"s\"\nhosts = [\"a\"]\nbalance = \"{balance}\"\n[[site.origin]]\naddress = \"127.0.0.1:1\"\n[[site.origin]]\naddress = \"127.0.0.1:2\"\n[[site.origin]]\naddress = \"127.0.0.1:3\"\n"
        );
        State::build(levee_config::parse("t", &text).unwrap(), None, 0).unwrap()
    }

    #[test]
    fn round_robin_and_least_outstanding() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let st = state("round-robin");
            let site = &st.sites[0];
            let picks: Vec<String> = (0..6)
                .map(|_| site.origins.pick(0).unwrap().address.clone())
                .collect();
            assert_eq!(picks[0..3], picks[3..6]);
            let mut first: Vec<&String> = picks[0..3].iter().collect();
            first.sort();
            first.dedup();
            assert_eq!(first.len(), 3);

            let st = state("least-outstanding");
            let site = &st.sites[0];
            // Busy origins 1 and 2: least-outstanding picks origin 3.
            let p1 = site.origins[0]
                .admit(crate::admission::Class::Unknown, false)
                .await
                .unwrap();
            let p2 = site.origins[1]
                .admit(crate::admission::Class::Unknown, false)
                .await
                .unwrap();
            let p2b = site.origins[1]
                .admit(crate::admission::Class::Unknown, false)
                .await
                .unwrap();
            for _ in 0..5 {
                assert_eq!(site.origins.pick(0).unwrap().address, "127.0.0.1:3");
            }
            drop((p1, p2, p2b));
            // An origin failing its active checks is skipped while others are up.
            site.origins[2]
                .healthy
                .store(false, std::sync::atomic::Ordering::Relaxed);
            for _ in 0..5 {
                assert_ne!(site.origins.pick(0).unwrap().address, "127.0.0.1:3");
            }
        });
    }

    #[test]
    fn hosts_normalize() {
        assert_eq!(normalize_host(b"Example.ORG:8080"), "example.org");
        assert_eq!(normalize_host(b"example.org."), "example.org");
        assert_eq!(normalize_host(b"[::1]:80"), "[::1]");
        assert_eq!(normalize_host(b"[::1]"), "[::1]");
    }
}
