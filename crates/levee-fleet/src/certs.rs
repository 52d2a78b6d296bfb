//! Certificates shared by a fleet's edges (`[tls.acme]` with `[fleet]`),
//! so that several edges do not stampede the CA:
//!
//! - `levee:v1:{fleet}:acme:lock:HOST` — the ordering lock (`SET NX PX`,
//!   a random token; released only by its holder);
//! - `levee:v1:{fleet}:acme:cert:HOST` — the certificate chain and key;
//! - `levee:v1:{fleet}:acme:answers:HOST` — the validation answers of the
//!   order in progress, expiring with the lock: the CA may reach any edge
//!   of the fleet, and each must answer for the one that ordered.
//!
//! Everything stored is sealed with ChaCha20-Poly1305 under a key derived
//! (HKDF-SHA-256) from the fleet's challenge secret, bound to its key name:
//! whoever can write to the store but lacks the secret can neither read a
//! private key nor plant an answer that would make the CA issue *them* a
//! certificate for the fleet's names. What does not open is refused as
//! garbage. Calls block (the ACME engine makes them off its own runtime)
//! and each has the fleet's timeout.

use crate::store::Conn;
use crate::{FleetError, Settings};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::sync::Mutex;
use std::time::Duration;

const MAGIC: &[u8] = b"LVA1";
/// Larger stored values are refused (a chain and key are a few KiB).
const MAX_VALUE: usize = 64 * 1024;

fn key(kind: &str, host: &str) -> String {
    format!("{}{{fleet}}:acme:{kind}:{host}", crate::keys::PREFIX)
}

/// A certificate chain and its key, PEM.
pub type Pem = (Vec<u8>, Vec<u8>);

/// The fleet's shared certificates, over a connection of their own.
pub struct CertShare {
    s: Settings,
    seal: LessSafeKey,
    token: String,
    rt: tokio::runtime::Runtime,
    conn: Mutex<Option<Conn>>,
}

impl std::fmt::Debug for CertShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertShare")
            .field("edge", &self.s.name)
            .finish()
    }
}

/// One validation answer of an order in progress.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// `http-01` or `tls-alpn-01`.
    pub kind: String,
    pub token: String,
    pub key_authorization: String,
}

impl CertShare {
    /// `secret`: the fleet's challenge secret (the same on every edge).
    pub fn new(s: Settings, secret: &[u8]) -> Result<CertShare, FleetError> {
        let salt = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, b"levee fleet acme v1");
        let prk = salt.extract(secret);
        let okm = prk
            .expand(&[b"certificates"], &CHACHA20_POLY1305)
            .map_err(|_| FleetError::Store("deriving the sealing key".into()))?;
        let seal = LessSafeKey::new(UnboundKey::from(okm));
        let mut t = [0u8; 16];
        SystemRandom::new()
            .fill(&mut t)
            .map_err(|_| FleetError::Store("no randomness for the lock token".into()))?;
        let token = format!(
            "{}:{}",
            s.name,
            t.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| FleetError::Store(format!("runtime: {e}")))?;
        Ok(CertShare {
            s,
            seal,
            token,
            rt,
            conn: Mutex::new(None),
        })
    }

    /// Run one pipeline, connecting first if needed; a failed call drops
    /// the connection (the next one reconnects).
    fn run<T: redis::FromRedisValue>(
        &self,
        p: &redis::Pipeline,
        what: &'static str,
    ) -> Result<T, FleetError> {
        let mut g = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.rt.block_on(async {
            if g.is_none() {
                *g = Some(Conn::connect(&self.s).await?);
            }
            let Some(c) = g.as_mut() else {
                return Err(FleetError::Store("not connected".into()));
            };
            let r = c.run(p, self.s.timeout, what).await;
            if r.is_err() {
                *g = None;
            }
            r
        })
    }

    fn seal(&self, name: &str, plain: &[u8]) -> Result<Vec<u8>, FleetError> {
        let mut n = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut n)
            .map_err(|_| FleetError::Store("no randomness for a nonce".into()))?;
        let mut buf = plain.to_vec();
        self.seal
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(n),
                Aad::from(name.as_bytes()),
                &mut buf,
            )
            .map_err(|_| FleetError::Store("sealing".into()))?;
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&n);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open(&self, name: &str, value: &[u8]) -> Result<Vec<u8>, FleetError> {
        let garbage = |detail: &str| FleetError::Garbage {
            what: "a shared certificate",
            detail: format!("{name}: {detail}"),
        };
        if value.len() > MAX_VALUE {
            return Err(garbage("larger than 64 KiB"));
        }
        let rest = value
            .strip_prefix(MAGIC)
            .ok_or_else(|| garbage("not sealed by Levee"))?;
        if rest.len() < NONCE_LEN {
            return Err(garbage("truncated"));
        }
        let (n, ct) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| garbage("bad nonce"))?;
        let mut buf = ct.to_vec();
        let plain = self
            .seal
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut buf)
            .map_err(|_| {
                garbage("does not open with this edge's secret (another fleet's, or tampered with)")
            })?;
        Ok(plain.to_vec())
    }

    /// Take `host`'s ordering lock for `ttl`; `false`: another edge has it.
    pub fn try_lock(&self, host: &str, ttl: Duration) -> Result<bool, FleetError> {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut p = redis::pipe();
        p.cmd("SET")
            .arg(key("lock", host))
            .arg(&self.token)
            .arg("NX")
            .arg("PX")
            .arg(ms);
        let (r,): (Option<String>,) = self.run(&p, "taking the ACME lock")?;
        Ok(r.is_some())
    }

    /// Release the lock if this edge still holds it.
    pub fn unlock(&self, host: &str) -> Result<(), FleetError> {
        let mut p = redis::pipe();
        p.cmd("EVAL")
            .arg("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end")
            .arg(1)
            .arg(key("lock", host))
            .arg(&self.token);
        let (_,): (i64,) = self.run(&p, "releasing the ACME lock")?;
        Ok(())
    }

    /// The fleet's certificate for `host`: (chain, key), PEM.
    pub fn fetch(&self, host: &str) -> Result<Option<Pem>, FleetError> {
        let name = key("cert", host);
        let mut p = redis::pipe();
        p.cmd("GET").arg(&name);
        let (v,): (Option<Vec<u8>>,) = self.run(&p, "reading the shared certificate")?;
        let Some(v) = v else { return Ok(None) };
        let plain = self.open(&name, &v)?;
        let pair: (String, String) =
            serde_json::from_slice(&plain).map_err(|e| FleetError::Garbage {
                what: "a shared certificate",
                detail: format!("{name}: {e}"),
            })?;
        Ok(Some((pair.0.into_bytes(), pair.1.into_bytes())))
    }

    /// Share `host`'s new certificate with the fleet.
    pub fn publish(&self, host: &str, chain: &[u8], key_pem: &[u8]) -> Result<(), FleetError> {
        let name = key("cert", host);
        let pair = (
            String::from_utf8_lossy(chain).into_owned(),
            String::from_utf8_lossy(key_pem).into_owned(),
        );
        let plain = serde_json::to_vec(&pair).map_err(|e| FleetError::Store(e.to_string()))?;
        let mut p = redis::pipe();
        p.cmd("SET").arg(&name).arg(self.seal(&name, &plain)?);
        let (_,): (String,) = self.run(&p, "sharing the certificate")?;
        Ok(())
    }

    /// Post the answers of the order in progress (they expire after `ttl`).
    pub fn post_answers(
        &self,
        host: &str,
        answers: &[Answer],
        ttl: Duration,
    ) -> Result<(), FleetError> {
        let name = key("answers", host);
        let plain = serde_json::to_vec(answers).map_err(|e| FleetError::Store(e.to_string()))?;
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut p = redis::pipe();
        p.cmd("SET")
            .arg(&name)
            .arg(self.seal(&name, &plain)?)
            .arg("PX")
            .arg(ms);
        let (_,): (String,) = self.run(&p, "posting the ACME answers")?;
        Ok(())
    }

    /// The answers another edge posted for `host` (at most 16).
    pub fn answers(&self, host: &str) -> Result<Vec<Answer>, FleetError> {
        let name = key("answers", host);
        let mut p = redis::pipe();
        p.cmd("GET").arg(&name);
        let (v,): (Option<Vec<u8>>,) = self.run(&p, "reading the ACME answers")?;
        let Some(v) = v else { return Ok(Vec::new()) };
        let plain = self.open(&name, &v)?;
        let mut a: Vec<Answer> =
            serde_json::from_slice(&plain).map_err(|e| FleetError::Garbage {
                what: "ACME answers",
                detail: format!("{name}: {e}"),
            })?;
        a.truncate(16);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(secret: &[u8]) -> CertShare {
        let s = Settings {
            url: "redis://127.0.0.1:1".into(),
            cluster: false,
            ca_pem: None,
            name: "a".into(),
            sync_every: Duration::from_millis(250),
            timeout: Duration::from_millis(100),
            connect_timeout: Duration::from_millis(100),
            failures_to_open: 3,
            open_for: Duration::from_secs(1),
            edge_ttl: Duration::from_secs(5),
            secret_fingerprint: String::new(),
        };
        CertShare::new(s, secret).unwrap()
    }

    #[test]
    fn sealed_values_open_only_with_the_secret_and_their_own_name() {
        let a = share(b"0123456789abcdef0123456789abcdef");
        let b = share(b"another secret, another fleet!!!");
        let sealed = a.seal("k1", b"private key").unwrap();
        assert_eq!(a.open("k1", &sealed).unwrap(), b"private key");
        // Another secret, another key name, a flipped bit, garbage: refused.
        assert!(b.open("k1", &sealed).is_err());
        assert!(a.open("k2", &sealed).is_err());
        let mut t = sealed.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(a.open("k1", &t).is_err());
        assert!(a.open("k1", b"LVA1").is_err());
        assert!(a.open("k1", b"plain text").is_err());
        assert!(a.open("k1", &vec![0u8; MAX_VALUE + 1]).is_err());
        // Two seals of one value differ (fresh nonces).
        assert_ne!(a.seal("k1", b"x").unwrap(), a.seal("k1", b"x").unwrap());
    }

    #[test]
    fn an_unreachable_store_is_an_error_not_a_hang() {
        let a = share(b"0123456789abcdef0123456789abcdef");
        let t = std::time::Instant::now();
        assert!(a.try_lock("a.test", Duration::from_secs(1)).is_err());
        assert!(a.fetch("a.test").is_err());
        assert!(t.elapsed() < Duration::from_secs(2));
    }
}
