//! Automatic certificates (`[tls.acme]`, RFC 8555), on a thread of its own.
//!
//! For each host: the certificate kept in the state directory is served at
//! start; a new one is ordered when there is none, at two-thirds of the
//! held one's lifetime, or, when the CA offers ACME Renewal Information
//! (RFC 9773), at a random point of the window it suggests (capped at
//! five-sixths; the new order then says which certificate it `replaces`).
//! See [`schedule`]. The CA's validation is answered
//! through the edge ([`Edge`]): TLS-ALPN-01 in its TLS resolver, HTTP-01
//! among its own paths, before any limit or challenge. A new certificate
//! serves from the next handshake; no connection is dropped.
//!
//! Failure is designed: every call to the CA gives up after `timeout`; a
//! failed order is logged with the CA's reason, counted, shown in
//! `/status` (`sources.acme`) and retried after `retry`, doubling up to
//! `retry_max`, while the held certificate keeps serving.
//!
//! In a fleet ([`Coordinator`], implemented over Redis by the binary), one
//! edge orders a host's certificate under a lock and publishes it; the
//! others take the published one instead of asking the CA themselves. A
//! store that is down does not stop a renewal: the edge then orders alone.

#![forbid(unsafe_code)]

mod client;
mod order;
pub mod schedule;
mod store;

use instant_acme::ChallengeType;
use schedule::Validity;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use instant_acme::ChallengeType as Challenge;

/// What can go wrong getting a certificate.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AcmeError {
    #[error("the CA did not answer {what} within {after:?}")]
    Timeout { what: &'static str, after: Duration },
    #[error("{what}: {detail}")]
    Ca { what: &'static str, detail: String },
    #[error("{0}")]
    Refused(String),
    #[error("the state directory: {0}")]
    State(String),
    #[error("{0}")]
    Setup(String),
    #[error("the certificate the CA gave cannot be served: {0}")]
    Unusable(String),
}

/// What the engine does to the edge (the binary implements it over the
/// edge's `Shared`).
pub trait Edge: Send + Sync {
    /// Serve this chain and key for `host` from the next handshake on;
    /// `Err` says why not (the held certificate stays).
    fn install(&self, host: &str, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), String>;
    /// Set or clear the TLS-ALPN-01 answer (certificate, PKCS#8 key; DER).
    fn alpn(&self, host: &str, answer: Option<(Vec<u8>, Vec<u8>)>) -> Result<(), String>;
    /// Set (host, key authorisation) or clear the HTTP-01 answer of `token`.
    fn http01(&self, token: &str, answer: Option<(&str, &str)>);
    /// One event (issued, adopted, failed).
    fn event(&self, fields: serde_json::Value);
    /// The engine's health, for `/status` and `/metrics`.
    fn health(&self, status: serde_json::Value, metrics: String);
}

/// A certificate chain and its key, PEM.
pub type Pem = (Vec<u8>, Vec<u8>);

/// A fleet's shared certificates (blocking calls, each with its own
/// timeout; the binary implements it over the fleet's store).
pub trait Coordinator: Send + Sync {
    /// Take `host`'s ordering lock for `ttl`; `Ok(false)`: another edge holds it.
    fn try_lock(&self, host: &str, ttl: Duration) -> Result<bool, String>;
    fn unlock(&self, host: &str);
    /// The fleet's certificate for `host` (chain, key; PEM), if any.
    fn fetch(&self, host: &str) -> Result<Option<Pem>, String>;
    fn publish(&self, host: &str, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), String>;
    /// Post the validation answers of this edge's order (expiring after
    /// `ttl`): the CA may reach another edge of the fleet.
    fn post_answers(&self, host: &str, answers: &[Answer], ttl: Duration) -> Result<(), String>;
    /// The answers another edge posted for `host`.
    fn answers(&self, host: &str) -> Result<Vec<Answer>, String>;
}

/// One validation answer, as the fleet shares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub challenge: ChallengeType,
    pub token: String,
    pub key_authorization: String,
}

impl Answer {
    /// What a token and key authorisation may hold (RFC 8555 §8.1:
    /// base64url and one dot), bounded.
    fn well_formed(&self) -> bool {
        let b64 = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        !self.token.is_empty()
            && self.token.len() <= 256
            && b64(&self.token)
            && self.key_authorization.len() <= 512
            && self
                .key_authorization
                .split_once('.')
                .is_some_and(|(t, p)| t == self.token && b64(p) && !p.is_empty())
    }
}

/// How long the ordering edge gives its answers to reach the fleet's
/// other edges before it tells the CA to validate (they look every 250 ms).
const PROPAGATE: Duration = Duration::from_secs(2);

/// `[tls.acme]`, resolved.
#[derive(Clone)]
pub struct Settings {
    pub directory: String,
    pub email: String,
    pub hosts: Vec<String>,
    /// PEM roots to trust for the directory's HTTPS (`None`: the public web roots).
    pub ca: Option<PathBuf>,
    pub state_dir: PathBuf,
    /// The challenges this edge answers, preferred first.
    pub challenges: Vec<ChallengeType>,
    pub retry: Duration,
    pub retry_max: Duration,
    pub timeout: Duration,
    pub coordinator: Option<Arc<dyn Coordinator>>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn when(t: i64) -> String {
    jiff::Timestamp::from_second(t).map_or_else(|_| t.to_string(), |ts| ts.to_string())
}

/// A certificate's validity and ARI identifier, read from its chain.
fn inspect(
    chain_pem: &[u8],
) -> Result<
    (
        Validity,
        Option<instant_acme::CertificateIdentifier<'static>>,
    ),
    String,
> {
    let der = rustls_pki_types::pem::PemObject::pem_slice_iter(chain_pem)
        .next()
        .ok_or("no PEM certificate")?
        .map_err(|e| format!("the PEM does not parse: {e:?}"))
        .map(|c: rustls_pki_types::CertificateDer<'static>| c)?;
    let (_, c) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let v = Validity {
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
    };
    let id = instant_acme::CertificateIdentifier::try_from(&der)
        .ok()
        .map(instant_acme::CertificateIdentifier::into_owned);
    Ok((v, id))
}

/// One host's certificate and schedule.
struct Host {
    name: String,
    held: Option<Validity>,
    id: Option<instant_acme::CertificateIdentifier<'static>>,
    renew_at: i64,
    /// The CA's window (ARI), and when to ask again.
    ari: Option<(i64, i64)>,
    ari_next: i64,
    failures: u32,
    next_try: i64,
    last_error: Option<String>,
    challenge: Option<&'static str>,
    /// Another edge of the fleet holds the lock: look again at `next_try`.
    waiting: bool,
    /// The ARI identifier the last order said it replaces.
    replaced: Option<String>,
}

impl Host {
    fn due(&self) -> i64 {
        if self.failures > 0 || self.waiting {
            self.next_try
        } else {
            self.renew_at
        }
    }

    fn reschedule(&mut self) {
        self.renew_at = match self.held {
            None => 0,
            Some(v) => schedule::renew_at(v, self.ari, pick(&self.name)),
        };
    }

    /// Whether the fleet's certificate `chain` beats the held one: it
    /// expires later and is not itself due for renewal.
    fn worth_taking(&self, chain: &[u8], now: i64) -> bool {
        inspect(chain).is_ok_and(|(v, _)| {
            self.held.is_none_or(|h| v.not_after > h.not_after) && v.two_thirds() > now
        })
    }

    fn adopt(&mut self, edge: &dyn Edge, chain: &[u8], key: &[u8]) -> Result<Validity, String> {
        let (v, id) = inspect(chain)?;
        edge.install(&self.name, chain, key)?;
        self.held = Some(v);
        self.id = id;
        self.ari = None;
        self.ari_next = 0;
        self.reschedule();
        Ok(v)
    }
}

/// Where in the CA's window to renew (RFC 9773 asks for a random point).
fn pick(seed: &str) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(seed.as_bytes());
    (h.finish() % 10_000) as f64 / 10_000.0
}

struct Engine {
    s: Settings,
    edge: Arc<dyn Edge>,
    store: store::Store,
    account: Option<instant_acme::Account>,
    hosts: Vec<Host>,
    issued: u64,
    failed: u64,
    adopted: u64,
}

/// Check the state directory and serve the stored certificates, then run
/// the engine on its own thread. An unwritable state directory is an error
/// (the edge refuses to start, naming it).
pub fn start(s: Settings, edge: Arc<dyn Edge>) -> Result<(), AcmeError> {
    let store = store::Store::new(&s.state_dir);
    store.check().map_err(AcmeError::State)?;
    let mut hosts = Vec::new();
    for name in &s.hosts {
        let mut h = Host {
            name: name.clone(),
            held: None,
            id: None,
            renew_at: 0,
            ari: None,
            ari_next: 0,
            failures: 0,
            next_try: 0,
            last_error: None,
            challenge: None,
            waiting: false,
            replaced: None,
        };
        if let Some((chain, key)) = store.load_cert(name) {
            match h.adopt(edge.as_ref(), &chain, &key) {
                Ok(v) => eprintln!(
                    "levee: acme: {name}: serving the stored certificate, valid until {}; renewal at {}",
                    when(v.not_after),
                    when(h.renew_at)
                ),
                Err(e) => eprintln!(
                    "levee: acme: {name}: the stored certificate cannot be served ({e}); ordering a new one"
                ),
            }
        }
        hosts.push(h);
    }
    let engine = Engine {
        s,
        edge,
        store,
        account: None,
        hosts,
        issued: 0,
        failed: 0,
        adopted: 0,
    };
    engine.publish();
    std::thread::Builder::new()
        .name("levee-acme".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("levee: acme: cannot start its runtime ({e}); no certificate will be ordered");
                    return;
                }
            };
            rt.block_on(engine.run());
        })
        .map_err(|e| AcmeError::Setup(format!("cannot start the ACME thread: {e}")))?;
    Ok(())
}

impl Engine {
    async fn run(mut self) {
        loop {
            let now = unix_now();
            for i in 0..self.hosts.len() {
                if self.hosts[i].held.is_some() && self.hosts[i].failures == 0 {
                    self.check_ari(i, now).await;
                }
                if self.hosts[i].due() <= now {
                    self.attempt(i).await;
                }
            }
            self.publish();
            let now = unix_now();
            let next = self
                .hosts
                .iter()
                .map(|h| {
                    h.due().min(if h.held.is_some() {
                        h.ari_next
                    } else {
                        i64::MAX
                    })
                })
                .min()
                .unwrap_or(i64::MAX);
            // Wake at least every minute (the clock may jump; ARI may change).
            let wait = (next - now).clamp(0, 60);
            tokio::time::sleep(
                Duration::from_secs(u64::try_from(wait).unwrap_or(60))
                    .max(Duration::from_millis(200)),
            )
            .await;
        }
    }

    async fn account(&mut self) -> Result<instant_acme::Account, AcmeError> {
        if let Some(a) = &self.account {
            return Ok(a.clone());
        }
        let a = order::account(&self.s, &self.store).await?;
        self.account = Some(a.clone());
        Ok(a)
    }

    /// Ask the CA's renewal window for a held certificate, when it is time.
    async fn check_ari(&mut self, i: usize, now: i64) {
        let h = &self.hosts[i];
        if h.ari_next > now {
            return;
        }
        let Some(id) = h.id.clone() else {
            eprintln!(
                "levee: acme: {}: the certificate has no authority key identifier, so the CA's renewal information cannot be asked; renewal at two-thirds",
                h.name
            );
            self.hosts[i].ari_next = i64::MAX;
            return;
        };
        let account = match self.account().await {
            Ok(a) => a,
            Err(_) => {
                // The order itself will say what is wrong, when due.
                self.hosts[i].ari_next = now + 3600;
                return;
            }
        };
        let r = tokio::time::timeout(self.s.timeout, account.renewal_info(&id)).await;
        let h = &mut self.hosts[i];
        match r {
            Ok(Ok((info, retry_after))) => {
                let w = &info.suggested_window;
                h.ari = Some((w.start.unix_timestamp(), w.end.unix_timestamp()));
                let again = i64::try_from(retry_after.as_secs()).unwrap_or(86_400);
                h.ari_next = now + again.clamp(60, 86_400);
                h.reschedule();
            }
            // The CA offers no renewal information: two-thirds it is.
            Ok(Err(instant_acme::Error::Unsupported(_))) => {
                eprintln!(
                    "levee: acme: {}: the CA offers no renewal information (ARI); renewal at two-thirds of the lifetime",
                    h.name
                );
                h.ari_next = i64::MAX;
            }
            Ok(Err(e)) => {
                eprintln!(
                    "levee: acme: {}: the CA's renewal information: {}; asking again in an hour (renewal stays at {})",
                    h.name,
                    order::chain(&e),
                    when(h.renew_at)
                );
                h.ari_next = now + 3600;
            }
            Err(_) => {
                eprintln!(
                    "levee: acme: {}: the CA's renewal information did not come within {:?}; asking again in an hour",
                    h.name, self.s.timeout
                );
                h.ari_next = now + 3600;
            }
        }
    }

    async fn attempt(&mut self, i: usize) {
        let name = self.hosts[i].name.clone();
        match self.obtain(i).await {
            Ok(Some((how, v))) => {
                let h = &mut self.hosts[i];
                h.failures = 0;
                h.waiting = false;
                h.last_error = None;
                let replaced = h.replaced.take();
                eprintln!(
                    "levee: acme: {name}: certificate {how}{}, valid until {}; renewal at {}",
                    replaced.as_ref().map_or(String::new(), |r| format!(
                        " (replacing {r}, as the CA's renewal information asked)"
                    )),
                    when(v.not_after),
                    when(h.renew_at)
                );
                self.edge.event(serde_json::json!({
                    "host": name, "outcome": how, "not_after": when(v.not_after),
                    "renew_at": when(h.renew_at), "challenge": h.challenge,
                    "replaces": replaced,
                }));
            }
            // Another edge of the fleet is ordering: look again soon.
            Ok(None) => {
                let h = &mut self.hosts[i];
                h.waiting = true;
                h.next_try = unix_now() + 5;
            }
            Err(e) => {
                self.failed += 1;
                if matches!(&e, AcmeError::Ca { detail, .. } if detail.contains("accountDoesNotExist"))
                {
                    order::forget_account(&self.s, &self.store);
                    self.account = None;
                }
                let h = &mut self.hosts[i];
                h.waiting = false;
                h.failures += 1;
                let wait = schedule::backoff(h.failures, self.s.retry, self.s.retry_max);
                h.next_try = unix_now() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2);
                h.last_error = Some(e.to_string());
                let kept = match h.held {
                    Some(v) => format!("keeping the certificate valid until {}", when(v.not_after)),
                    None => format!(
                        "no certificate yet: TLS clients asking for {name} get a handshake failure"
                    ),
                };
                eprintln!(
                    "levee: acme: {name}: {e}; {kept}; next try in {}s (failure {})",
                    wait.as_secs(),
                    h.failures
                );
                self.edge.event(serde_json::json!({
                    "host": name, "outcome": "failed", "error": e.to_string(),
                    "failures": h.failures, "next_try": when(h.next_try),
                }));
            }
        }
    }

    /// A new certificate for host `i`: the fleet's, or ordered here.
    /// `Ok(None)`: another edge holds the fleet's lock.
    async fn obtain(&mut self, i: usize) -> Result<Option<(&'static str, Validity)>, AcmeError> {
        let name = self.hosts[i].name.clone();
        let coord = self.s.coordinator.clone();
        let lock_ttl = self.s.timeout * 8 + Duration::from_secs(30);
        let mut locked = false;
        if let Some(c) = &coord {
            let (c2, n) = (Arc::clone(c), name.clone());
            let shared = tokio::task::spawn_blocking(move || c2.fetch(&n))
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
            match shared {
                Ok(Some((chain, key))) => {
                    if self.hosts[i].worth_taking(&chain, unix_now()) {
                        return self.take_shared(i, &chain, &key);
                    }
                }
                Ok(None) => {}
                Err(e) => eprintln!("levee: acme: {name}: the fleet's store: {e}; ordering alone"),
            }
            let (c2, n) = (Arc::clone(c), name.clone());
            match tokio::task::spawn_blocking(move || c2.try_lock(&n, lock_ttl))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
            {
                Ok(true) => locked = true,
                Ok(false) => return self.follow(i, Arc::clone(c), lock_ttl).await,
                Err(e) => eprintln!("levee: acme: {name}: the fleet's lock: {e}; ordering alone"),
            }
        }
        let result = self.order_here(i).await;
        if let Some(c) = &coord {
            if let Ok((_, _, chain, key)) = &result {
                let (c2, n, ch, k) = (Arc::clone(c), name.clone(), chain.clone(), key.clone());
                if let Ok(Err(e)) =
                    tokio::task::spawn_blocking(move || c2.publish(&n, ch.as_bytes(), k.as_bytes()))
                        .await
                {
                    eprintln!(
                        "levee: acme: {name}: could not share the certificate with the fleet: {e}"
                    );
                }
            }
            if locked {
                let (c2, n) = (Arc::clone(c), name.clone());
                let _ = tokio::task::spawn_blocking(move || c2.unlock(&n)).await;
            }
        }
        result.map(|(how, v, _, _)| Some((how, v)))
    }

    /// Another edge holds the lock: answer the CA for it (its posted
    /// answers, every 250 ms) and take its certificate when it is shared.
    /// `Ok(None)`: nothing came before the lock's time ran out.
    async fn follow(
        &mut self,
        i: usize,
        c: Arc<dyn Coordinator>,
        ttl: Duration,
    ) -> Result<Option<(&'static str, Validity)>, AcmeError> {
        let name = self.hosts[i].name.clone();
        let deadline = tokio::time::Instant::now() + ttl;
        let mut installed: Vec<Answer> = Vec::new();
        let mut tick = 0u32;
        let result = loop {
            if tokio::time::Instant::now() >= deadline {
                break Ok(None);
            }
            let (c2, n) = (Arc::clone(&c), name.clone());
            if let Ok(Ok(answers)) = tokio::task::spawn_blocking(move || c2.answers(&n)).await {
                for a in answers.into_iter().filter(Answer::well_formed) {
                    if installed.contains(&a) {
                        continue;
                    }
                    if order::serve_answer(self.edge.as_ref(), &name, &a).is_ok() {
                        installed.push(a);
                    }
                }
            }
            if tick.is_multiple_of(4) {
                let (c2, n) = (Arc::clone(&c), name.clone());
                if let Ok(Ok(Some((chain, key)))) =
                    tokio::task::spawn_blocking(move || c2.fetch(&n)).await
                {
                    if self.hosts[i].worth_taking(&chain, unix_now()) {
                        break self.take_shared(i, &chain, &key);
                    }
                }
            }
            tick += 1;
            tokio::time::sleep(Duration::from_millis(250)).await;
        };
        for a in &installed {
            order::clear_answer(self.edge.as_ref(), &name, a);
        }
        result
    }

    /// Serve and keep the fleet's certificate for host `i`.
    fn take_shared(
        &mut self,
        i: usize,
        chain: &[u8],
        key: &[u8],
    ) -> Result<Option<(&'static str, Validity)>, AcmeError> {
        let v = self.hosts[i]
            .adopt(self.edge.as_ref(), chain, key)
            .map_err(AcmeError::Unusable)?;
        self.store
            .save_cert(&self.hosts[i].name, chain, key)
            .map_err(AcmeError::State)?;
        self.adopted += 1;
        self.hosts[i].challenge = Some("fleet");
        Ok(Some(("adopted from the fleet", v)))
    }

    async fn order_here(
        &mut self,
        i: usize,
    ) -> Result<(&'static str, Validity, String, String), AcmeError> {
        let account = self.account().await?;
        let name = self.hosts[i].name.clone();
        let replaces = match (&self.hosts[i].id, self.hosts[i].ari) {
            (Some(id), Some(_)) => Some(id.clone()),
            _ => None,
        };
        let replaced = replaces.as_ref().map(ToString::to_string);
        let share = self
            .s
            .coordinator
            .clone()
            .map(|c| (c, self.s.timeout * 8 + Duration::from_secs(30)));
        let issued = order::order(
            &self.s,
            &account,
            self.edge.as_ref(),
            &name,
            replaces,
            share,
        )
        .await?;
        // Checked and served before it is kept: a chain that cannot be
        // served never replaces the stored one.
        let v = self.hosts[i]
            .adopt(
                self.edge.as_ref(),
                issued.chain.as_bytes(),
                issued.key.as_bytes(),
            )
            .map_err(AcmeError::Unusable)?;
        self.store
            .save_cert(&name, issued.chain.as_bytes(), issued.key.as_bytes())
            .map_err(AcmeError::State)?;
        self.issued += 1;
        self.hosts[i].challenge = Some(issued.challenge);
        self.hosts[i].replaced = replaced;
        Ok(("issued", v, issued.chain, issued.key))
    }

    /// Tell the edge how things stand.
    fn publish(&self) {
        let now = unix_now();
        let hosts: Vec<serde_json::Value> = self
            .hosts
            .iter()
            .map(|h| {
                let state = match (h.held, h.failures) {
                    (Some(v), _) if v.not_after <= now => "expired",
                    (Some(_), 0) => "valid",
                    (Some(_), _) => "renewal failing: serving the held certificate",
                    (_, 0) if h.waiting => "another edge of the fleet is ordering",
                    (None, 0) => "ordering",
                    (None, _) => "failing: no certificate",
                };
                serde_json::json!({
                    "host": h.name,
                    "state": state,
                    "not_after": h.held.map(|v| when(v.not_after)),
                    "renew_at": h.held.map(|_| when(h.renew_at)),
                    "ari_window": h.ari.map(|(a, b)| [when(a), when(b)]),
                    "challenge": h.challenge,
                    "failures": h.failures,
                    "next_try": (h.failures > 0).then(|| when(h.next_try)),
                    "last_error": h.last_error,
                })
            })
            .collect();
        let status = serde_json::json!({
            "directory": self.s.directory,
            "hosts": hosts,
            "issued": self.issued,
            "adopted_from_fleet": self.adopted,
            "failed": self.failed,
        });
        let mut m = String::from(
            "# HELP levee_acme_orders_total certificate orders by result (issued, failed; adopted: taken from the fleet)\n# TYPE levee_acme_orders_total counter\n",
        );
        m.push_str(&format!(
            "levee_acme_orders_total{{result=\"issued\"}} {}\nlevee_acme_orders_total{{result=\"failed\"}} {}\nlevee_acme_orders_total{{result=\"adopted\"}} {}\n",
            self.issued, self.failed, self.adopted
        ));
        m.push_str("# HELP levee_acme_consecutive_failures failed attempts in a row per host (0: the last one worked)\n# TYPE levee_acme_consecutive_failures gauge\n");
        for h in &self.hosts {
            m.push_str(&format!(
                "levee_acme_consecutive_failures{{host=\"{}\"}} {}\n",
                h.name, h.failures
            ));
        }
        self.edge.health(status, m);
    }
}
