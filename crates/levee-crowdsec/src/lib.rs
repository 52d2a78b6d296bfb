//! The edge as a CrowdSec bouncer (`[crowdsec]`): follows a Local API's
//! decision stream, first with `startup=true` (the whole list), then for
//! what changed every `poll`. `ban` decisions go to the edge's block list
//! (and so to the packet filter), `captcha` decisions to the challenge.
//!
//! Failure is designed: every call gives up after `timeout`; when the API
//! is slow, refuses or is gone, the decisions already applied stay (they
//! expire as CrowdSec said) and the health says so (`/status` under
//! `sources.crowdsec`, `levee_crowdsec_*` metrics); a malformed answer is
//! refused whole (`stream`), and the next call asks for the whole list
//! again, which then replaces what was held. At most `max_decisions` are
//! held. The edge is reached through the `Edge` trait, which the binary
//! implements over the edge's `Shared`.

pub mod stream;

use std::collections::HashMap;
use std::io::Read as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use stream::{Decision, Kind};

/// What the bouncer does to the edge.
pub trait Edge: Send + Sync {
    fn ban(&self, addr: IpAddr, len: u8, ttl: Duration) -> bool;
    fn unban(&self, addr: IpAddr, len: u8) -> bool;
    fn challenge(&self, addr: IpAddr, len: u8, ttl: Duration) -> bool;
    fn unchallenge(&self, addr: IpAddr, len: u8) -> bool;
    /// One event of what changed.
    fn event(&self, fields: serde_json::Value);
    /// The bouncer's health, for `/status` and `/metrics`.
    fn health(&self, status: serde_json::Value, metrics: String);
    /// The edge's own automatic blocks after event `since`, and the last
    /// event's number (for `push`).
    fn own_blocks_since(&self, since: u64) -> (Vec<OwnBlock>, u64);
}

/// A block the edge decided itself (its adaptive defense), to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnBlock {
    pub cidr: String,
    pub ttl: Duration,
    pub why: String,
    pub site: String,
}

/// Machine credentials to push the edge's automatic blocks to the Local
/// API as alerts (`cscli machines add levee-edge`).
#[derive(Debug, Clone)]
pub struct Push {
    pub machine_id: String,
    pub password: String,
}

/// The bouncer's settings (from `[crowdsec]`).
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port` or `https://…`, without a trailing slash.
    pub lapi: String,
    pub api_key: String,
    pub poll: Duration,
    pub timeout: Duration,
    /// PEM of the certificate authority to trust for `https://`.
    pub ca_pem: Option<Vec<u8>>,
    pub max_decisions: usize,
    /// Push the edge's automatic blocks as alerts (off: `None`).
    pub push: Option<Push>,
}

#[derive(Debug, thiserror::Error)]
pub enum BouncerError {
    #[error("crowdsec.ca: {0}")]
    Ca(String),
}

/// Why one call gave nothing to apply.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("the Local API at {0} is unreachable: {1}")]
    Unreachable(String, String),
    #[error("the Local API refused the bouncer's key (HTTP {0}): check crowdsec.api_key (cscli bouncers add levee)")]
    Refused(u16),
    #[error("the Local API answered HTTP {0}")]
    Status(u16),
    #[error("the Local API's answer is over {0} bytes")]
    TooLarge(u64),
    #[error("malformed answer, ignored (nothing of it applied): {0}")]
    Malformed(#[from] stream::StreamError),
}

/// What one call changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub added: usize,
    pub removed: usize,
    pub skipped: usize,
    /// Decisions not held: `max_decisions` reached, or the edge's own
    /// list was full.
    pub dropped: usize,
}

/// Now, as RFC 3339 in UTC (what the Local API's alerts carry).
fn jiff_now() -> String {
    jiff::Timestamp::now().to_string()
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Debug, Default)]
struct Health {
    up: bool,
    pulls: u64,
    unreachable: u64,
    refused: u64,
    malformed: u64,
    skipped: u64,
    dropped: u64,
    last_ok_unix_ms: Option<u64>,
    last_error: Option<(u64, String)>,
    pushed: u64,
    push_errors: u64,
    last_push_error: Option<String>,
}

/// At most this many automatic blocks wait to be pushed (the oldest are
/// dropped, counted as push errors).
const PENDING: usize = 1000;

/// The bouncer: its HTTP agent and the decisions it holds.
pub struct Bouncer {
    cfg: Config,
    agent: ureq::Agent,
    held: HashMap<(IpAddr, u8, Kind), Instant>,
    startup: bool,
    health: Health,
    /// Pushing: the last event seen, the blocks waiting, the watcher token.
    seen: Option<u64>,
    pending: std::collections::VecDeque<OwnBlock>,
    token: Option<String>,
}

impl Bouncer {
    pub fn new(cfg: Config) -> Result<Bouncer, BouncerError> {
        let mut b = ureq::AgentBuilder::new()
            .timeout(cfg.timeout)
            // A redirect would carry the key (a header) to wherever it points.
            .redirects(0)
            .user_agent(concat!("levee/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &cfg.ca_pem {
            let mut roots = rustls::RootCertStore::empty();
            for c in rustls_pemfile::certs(&mut pem.as_slice()) {
                let c = c.map_err(|e| BouncerError::Ca(e.to_string()))?;
                roots.add(c).map_err(|e| BouncerError::Ca(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(BouncerError::Ca("no certificate in the file".into()));
            }
            let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| BouncerError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            b = b.tls_config(Arc::new(tls));
        }
        Ok(Bouncer {
            agent: b.build(),
            cfg,
            held: HashMap::new(),
            startup: true,
            health: Health::default(),
            seen: None,
            pending: std::collections::VecDeque::new(),
            token: None,
        })
    }

    /// Decisions held, by kind.
    pub fn held(&self, kind: Kind) -> usize {
        self.held.keys().filter(|k| k.2 == kind).count()
    }

    fn fetch(&self) -> Result<Vec<u8>, PollError> {
        let url = format!(
            "{}/v1/decisions/stream?startup={}",
            self.cfg.lapi.trim_end_matches('/'),
            self.startup
        );
        let resp = match self
            .agent
            .get(&url)
            .set("X-Api-Key", &self.cfg.api_key)
            .call()
        {
            Ok(r) => r,
            Err(ureq::Error::Status(c @ (401 | 403), _)) => return Err(PollError::Refused(c)),
            Err(ureq::Error::Status(c, _)) => return Err(PollError::Status(c)),
            Err(ureq::Error::Transport(t)) => {
                return Err(PollError::Unreachable(self.cfg.lapi.clone(), t.to_string()))
            }
        };
        // About 300 bytes a decision, with room.
        let limit = (self.cfg.max_decisions as u64)
            .saturating_mul(1024)
            .max(1 << 20);
        let mut body = Vec::new();
        resp.into_reader()
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| PollError::Unreachable(self.cfg.lapi.clone(), e.to_string()))?;
        if body.len() as u64 > limit {
            return Err(PollError::TooLarge(limit));
        }
        Ok(body)
    }

    fn add(&mut self, edge: &dyn Edge, d: &Decision, now: Instant, out: &mut Applied) {
        let key = (d.addr, d.len, d.kind);
        if !self.held.contains_key(&key) && self.held.len() >= self.cfg.max_decisions {
            out.dropped += 1;
            return;
        }
        let ok = match d.kind {
            Kind::Ban => edge.ban(d.addr, d.len, d.ttl),
            Kind::Captcha => edge.challenge(d.addr, d.len, d.ttl),
        };
        if ok {
            self.held.insert(key, now + d.ttl);
            out.added += 1;
        } else {
            out.dropped += 1;
        }
    }

    fn remove(&mut self, edge: &dyn Edge, key: (IpAddr, u8, Kind), out: &mut Applied) {
        if self.held.remove(&key).is_some() {
            match key.2 {
                Kind::Ban => edge.unban(key.0, key.1),
                Kind::Captcha => edge.unchallenge(key.0, key.1),
            };
            out.removed += 1;
        }
    }

    /// Apply one answer; with `full` (a startup answer) it replaces what is held.
    pub fn apply(&mut self, edge: &dyn Edge, delta: &stream::Delta, full: bool) -> Applied {
        let now = Instant::now();
        let mut out = Applied {
            skipped: delta.skipped.len(),
            ..Applied::default()
        };
        self.held.retain(|_, until| *until > now);
        if full {
            let keep: std::collections::HashSet<(IpAddr, u8, Kind)> =
                delta.new.iter().map(|d| (d.addr, d.len, d.kind)).collect();
            let gone: Vec<_> = self
                .held
                .keys()
                .filter(|k| !keep.contains(k))
                .copied()
                .collect();
            for k in gone {
                self.remove(edge, k, &mut out);
            }
        }
        for d in &delta.deleted {
            self.remove(edge, (d.addr, d.len, d.kind), &mut out);
        }
        for d in &delta.new {
            if d.ttl > Duration::ZERO {
                self.add(edge, d, now, &mut out);
            }
        }
        out
    }

    /// One call to the stream, applied.
    pub fn poll_once(&mut self, edge: &dyn Edge) -> Result<Applied, PollError> {
        self.health.pulls += 1;
        let result = self.fetch().and_then(|body| {
            stream::parse(&body, self.cfg.max_decisions.saturating_mul(4)).map_err(PollError::from)
        });
        let r = match result {
            Ok(delta) => {
                let full = self.startup;
                let a = self.apply(edge, &delta, full);
                self.startup = false;
                self.health.up = true;
                self.health.last_ok_unix_ms = Some(unix_ms());
                self.health.skipped += a.skipped as u64;
                self.health.dropped += a.dropped as u64;
                if a.added + a.removed > 0 {
                    edge.event(serde_json::json!({
                        "by": "crowdsec",
                        "added": a.added,
                        "removed": a.removed,
                        "full_list": full,
                        "bans": self.held(Kind::Ban),
                        "captchas": self.held(Kind::Captcha),
                    }));
                }
                Ok(a)
            }
            Err(e) => {
                match &e {
                    PollError::Malformed(_) | PollError::TooLarge(_) => {
                        self.health.malformed += 1;
                        // What was missed is not known: ask for the whole list.
                        self.startup = true;
                    }
                    PollError::Refused(_) => self.health.refused += 1,
                    _ => self.health.unreachable += 1,
                }
                if !matches!(e, PollError::Malformed(_) | PollError::TooLarge(_)) {
                    self.health.up = false;
                }
                self.health.last_error = Some((unix_ms(), e.to_string()));
                Err(e)
            }
        };
        self.publish(edge);
        r
    }

    fn login(&self, p: &Push) -> Result<String, String> {
        let url = format!("{}/v1/watchers/login", self.cfg.lapi.trim_end_matches('/'));
        let body = serde_json::json!({"machine_id": p.machine_id, "password": p.password, "scenarios": ["levee/auto-block"]});
        let resp = self
            .agent
            .post(&url)
            .send_json(body)
            .map_err(|e| format!("login as {}: {e}", p.machine_id))?;
        let v: serde_json::Value = resp
            .into_json()
            .map_err(|e| format!("login as {}: {e}", p.machine_id))?;
        v["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("login as {}: no token in the answer", p.machine_id))
    }

    /// Push the edge's automatic blocks since the last call as alerts, each
    /// with its ban decision; kept for the next call when the API fails.
    pub fn push_once(&mut self, edge: &dyn Edge) -> Result<usize, String> {
        let Some(p) = self.cfg.push.clone() else {
            return Ok(0);
        };
        let (blocks, last) = edge.own_blocks_since(self.seen.unwrap_or(0));
        if self.seen.is_none() {
            // From now on: what was decided before the bouncer started is
            // in the events already shown.
            self.seen = Some(last);
        } else {
            self.seen = Some(last);
            for b in blocks {
                if self.pending.len() >= PENDING {
                    self.pending.pop_front();
                    self.health.push_errors += 1;
                }
                self.pending.push_back(b);
            }
        }
        if self.pending.is_empty() {
            return Ok(0);
        }
        let now = jiff_now();
        let alerts: Vec<serde_json::Value> = self
            .pending
            .iter()
            .map(|b| {
                let value = b.cidr.strip_suffix("/32").or_else(|| b.cidr.strip_suffix("/128"));
                let (scope, value) = match value {
                    Some(ip) => ("Ip", ip.to_string()),
                    None => ("Range", b.cidr.clone()),
                };
                let duration = format!("{}s", b.ttl.as_secs().max(1));
                serde_json::json!({
                    "scenario": "levee/auto-block",
                    "scenario_hash": "",
                    "scenario_version": "",
                    "message": format!("levee: {} on site {}: blocked {} for {duration}", b.why, b.site, b.cidr),
                    "events_count": 1,
                    "events": [{"timestamp": now, "meta": [{"key": "source_ip", "value": value}, {"key": "site", "value": b.site}]}],
                    "start_at": now,
                    "stop_at": now,
                    "capacity": 0,
                    "leakspeed": "0",
                    "simulated": false,
                    "remediation": true,
                    "source": {"scope": scope, "value": value},
                    "decisions": [{"origin": "levee", "type": "ban", "scope": scope, "value": value, "duration": duration, "scenario": "levee/auto-block"}],
                })
            })
            .collect();
        let url = format!("{}/v1/alerts", self.cfg.lapi.trim_end_matches('/'));
        let mut tried_login = false;
        loop {
            let token = match &self.token {
                Some(t) => t.clone(),
                None => {
                    tried_login = true;
                    let t = self.login(&p).inspect_err(|e| {
                        self.health.push_errors += 1;
                        self.health.last_push_error = Some(e.clone());
                    })?;
                    self.token = Some(t.clone());
                    t
                }
            };
            match self
                .agent
                .post(&url)
                .set("Authorization", &format!("Bearer {token}"))
                .send_json(serde_json::Value::Array(alerts.clone()))
            {
                Ok(_) => {
                    let n = self.pending.len();
                    self.pending.clear();
                    self.health.pushed += n as u64;
                    return Ok(n);
                }
                Err(ureq::Error::Status(401, _)) if !tried_login => self.token = None,
                Err(e) => {
                    let e = format!("pushing {} alert(s): {e}", alerts.len());
                    self.health.push_errors += 1;
                    self.health.last_push_error = Some(e.clone());
                    return Err(e);
                }
            }
        }
    }

    fn publish(&self, edge: &dyn Edge) {
        let h = &self.health;
        let (bans, captchas) = (self.held(Kind::Ban), self.held(Kind::Captcha));
        let status = serde_json::json!({
            "lapi": self.cfg.lapi,
            "up": h.up,
            "state": if h.up { "following" } else if h.pulls <= 1 && h.last_ok_unix_ms.is_none() { "not reached yet" } else { "unreachable: keeping the last list" },
            "bans": bans,
            "captchas": captchas,
            "pulls": h.pulls,
            "last_ok_unix_ms": h.last_ok_unix_ms,
            "last_error": h.last_error.as_ref().map(|e| e.1.clone()),
            "last_error_unix_ms": h.last_error.as_ref().map(|e| e.0),
            "malformed_answers": h.malformed,
            "skipped_decisions": h.skipped,
            "dropped_decisions": h.dropped,
            "push": self.cfg.push.as_ref().map(|p| serde_json::json!({
                "machine_id": p.machine_id,
                "pushed": h.pushed,
                "waiting": self.pending.len(),
                "errors": h.push_errors,
                "last_error": h.last_push_error,
            })),
        });
        let metrics = format!(
            "# HELP levee_crowdsec_lapi_up Whether the last call to the CrowdSec Local API succeeded.\n# TYPE levee_crowdsec_lapi_up gauge\nlevee_crowdsec_lapi_up {}\n# HELP levee_crowdsec_decisions Decisions from CrowdSec held by the edge.\n# TYPE levee_crowdsec_decisions gauge\nlevee_crowdsec_decisions{{type=\"ban\"}} {bans}\nlevee_crowdsec_decisions{{type=\"captcha\"}} {captchas}\n# HELP levee_crowdsec_errors_total Calls to the Local API that gave nothing to apply.\n# TYPE levee_crowdsec_errors_total counter\nlevee_crowdsec_errors_total{{kind=\"unreachable\"}} {}\nlevee_crowdsec_errors_total{{kind=\"refused\"}} {}\nlevee_crowdsec_errors_total{{kind=\"malformed\"}} {}\n# HELP levee_crowdsec_skipped_total Decisions not acted on (type or scope), or not held (list full).\n# TYPE levee_crowdsec_skipped_total counter\nlevee_crowdsec_skipped_total{{why=\"type_or_scope\"}} {}\nlevee_crowdsec_skipped_total{{why=\"full\"}} {}\n# HELP levee_crowdsec_alerts_pushed_total The edge's automatic blocks pushed to the Local API.\n# TYPE levee_crowdsec_alerts_pushed_total counter\nlevee_crowdsec_alerts_pushed_total {}\nlevee_crowdsec_push_errors_total {}\n",
            u8::from(h.up),
            h.unreachable,
            h.refused,
            h.malformed,
            h.skipped,
            h.dropped,
            h.pushed,
            h.push_errors
        );
        edge.health(status, metrics);
    }

    /// Follow the stream until `stop`: one call every `poll`. A change of
    /// state (reached, lost, malformed) is said once on standard error.
    pub fn run(mut self, edge: &dyn Edge, stop: &AtomicBool) {
        let mut was: Option<bool> = None;
        self.publish(edge);
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let r = self.poll_once(edge);
            let ok = r.is_ok();
            let waiting = self.pending.len();
            match self.push_once(edge) {
                Ok(n) if n > 0 => {
                    eprintln!("levee: crowdsec: pushed {n} automatic block(s) as alerts")
                }
                Err(e) if waiting == 0 || self.health.push_errors <= 1 => {
                    eprintln!("levee: crowdsec: {e}")
                }
                _ => {}
            }
            self.publish(edge);
            match (&r, was) {
                (Ok(_), Some(false) | None) => eprintln!(
                    "levee: crowdsec: following the decisions of {} ({} bans, {} captchas held)",
                    self.cfg.lapi,
                    self.held(Kind::Ban),
                    self.held(Kind::Captcha)
                ),
                (Err(e), Some(true) | None) => eprintln!("levee: crowdsec: {e}"),
                (Err(e @ PollError::Malformed(_)), _) => eprintln!("levee: crowdsec: {e}"),
                _ => {}
            }
            was = Some(ok);
            let wait = self.cfg.poll.saturating_sub(started.elapsed());
            let until = Instant::now() + wait;
            while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(50).min(wait));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);
    impl Edge for Log {
        fn ban(&self, a: IpAddr, l: u8, _: Duration) -> bool {
            self.0.lock().unwrap().push(format!("ban {a}/{l}"));
            true
        }
        fn unban(&self, a: IpAddr, l: u8) -> bool {
            self.0.lock().unwrap().push(format!("unban {a}/{l}"));
            true
        }
        fn challenge(&self, a: IpAddr, l: u8, _: Duration) -> bool {
            self.0.lock().unwrap().push(format!("captcha {a}/{l}"));
            true
        }
        fn unchallenge(&self, a: IpAddr, l: u8) -> bool {
            self.0.lock().unwrap().push(format!("uncaptcha {a}/{l}"));
            true
        }
        fn event(&self, _: serde_json::Value) {}
        fn health(&self, _: serde_json::Value, _: String) {}
        fn own_blocks_since(&self, since: u64) -> (Vec<OwnBlock>, u64) {
            (Vec::new(), since)
        }
    }

    fn cfg(max: usize) -> Config {
        Config {
            lapi: "http://127.0.0.1:1".into(),
            api_key: "k".into(),
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            ca_pem: None,
            max_decisions: max,
            push: None,
        }
    }

    fn d(body: &str) -> stream::Delta {
        stream::parse(body.as_bytes(), 100).unwrap()
    }

    /// A startup answer replaces what is held; deltas add and remove; the
    /// bound holds.
    #[test]
    fn full_lists_replace_deltas_change_and_the_bound_holds() {
        let e = Log::default();
        let mut b = Bouncer::new(cfg(2)).unwrap();
        let a = b.apply(&e, &d(r#"{"new":[{"type":"ban","scope":"Ip","value":"192.0.2.1","duration":"1h"},{"type":"captcha","scope":"Range","value":"198.51.100.0/24","duration":"1h"},{"type":"ban","scope":"Ip","value":"192.0.2.3","duration":"1h"}]}"#), true);
        assert_eq!((a.added, a.dropped), (2, 1));
        let a = b.apply(
            &e,
            &d(r#"{"deleted":[{"type":"ban","scope":"Ip","value":"192.0.2.1","duration":"-1s"}]}"#),
            false,
        );
        assert_eq!(a.removed, 1);
        let a = b.apply(
            &e,
            &d(r#"{"new":[{"type":"ban","scope":"Ip","value":"192.0.2.9","duration":"1h"}]}"#),
            true,
        );
        assert_eq!(
            (a.added, a.removed),
            (1, 1),
            "the captcha is not in the full list"
        );
        assert_eq!(
            *e.0.lock().unwrap(),
            vec![
                "ban 192.0.2.1/32",
                "captcha 198.51.100.0/24",
                "unban 192.0.2.1/32",
                "uncaptcha 198.51.100.0/24",
                "ban 192.0.2.9/32"
            ]
        );
    }

    /// A Local API that is not there: an error that names it, nothing
    /// applied, and the next call asks again from the start.
    #[test]
    fn an_unreachable_api_changes_nothing() {
        let e = Log::default();
        let mut b = Bouncer::new(cfg(10)).unwrap();
        let err = b.poll_once(&e).unwrap_err().to_string();
        assert!(
            err.contains("unreachable") && err.contains("127.0.0.1:1"),
            "{err}"
        );
        assert!(e.0.lock().unwrap().is_empty());
        assert!(b.startup);
    }
}
