//! TLS configuration: server certificates chosen by SNI, and client
//! configuration for origins that speak TLS.
//!
//! Certificates come from files (`[[tls.certificate]]`, fixed until a
//! reload) and from the ACME engine ([`LiveCerts`], swapped while the edge
//! runs: each handshake looks its certificate up, so a new one serves the
//! next handshake and no connection is dropped). A file's certificate wins
//! for the names it lists. A ClientHello that offers only `acme-tls/1`
//! (RFC 8737) gets the TLS-ALPN-01 answer for its name, or nothing.

use crate::error::BuildError;
use levee_config::Tls;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub(crate) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

fn read(path: &Path, key_path: &str) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|e| BuildError::Read {
        path: key_path.to_string(),
        file: path.display().to_string(),
        source: e,
    })
}

fn invalid(path: &str, message: impl Into<String>) -> BuildError {
    BuildError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut &pem[..]).collect();
    let certs = certs.map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no PEM certificate found".into());
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut &pem[..])
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no PEM private key found".to_string())
}

/// Load a PEM certificate chain.
pub(crate) fn load_certs(
    path: &Path,
    key_path: &str,
) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let pem = read(path, key_path)?;
    certs_from_pem(&pem).map_err(|e| invalid(key_path, format!("{}: {e}", path.display())))
}

fn load_key(path: &Path, key_path: &str) -> Result<PrivateKeyDer<'static>, BuildError> {
    let pem = read(path, key_path)?;
    key_from_pem(&pem).map_err(|e| invalid(key_path, format!("{}: {e}", path.display())))
}

/// When the chain's first (leaf) certificate expires, in Unix seconds.
pub(crate) fn not_after(certs: &[CertificateDer<'_>]) -> Result<i64, String> {
    let leaf = certs.first().ok_or("no certificate")?;
    let (_, c) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| format!("the leaf certificate does not parse: {e}"))?;
    Ok(c.validity().not_after.timestamp())
}

/// A certificate and its key, checked to belong together (except for a
/// TLS-ALPN-01 answer: its critical acmeIdentifier extension is one the
/// checker does not know, and it is made by the engine with its key).
fn certified(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    let ck = unchecked(certs, key)?;
    ck.keys_match()
        .map_err(|e| format!("the key does not match the certificate: {e}"))?;
    Ok(ck)
}

fn unchecked(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, String> {
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| format!("unusable key: {e}"))?;
    Ok(CertifiedKey::new(certs, signing))
}

/// A certificate in use, and when it expires.
#[derive(Debug, Clone)]
struct Held {
    key: Arc<CertifiedKey>,
    not_after: i64,
}

/// The certificates that change while the edge runs (ACME) and the
/// answers to its validations. Kept across reloads. Bounded: only the
/// ACME engine writes here, one entry per configured host.
#[derive(Debug, Default)]
pub(crate) struct LiveCerts {
    certs: RwLock<HashMap<String, Held>>,
    /// The certificate for clients that send no SNI (the first installed).
    first: RwLock<Option<String>>,
    /// TLS-ALPN-01 answers by host.
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// HTTP-01 answers: token → (host, key authorisation).
    http01: RwLock<HashMap<String, (String, String)>>,
}

impl LiveCerts {
    /// Serve `chain_pem` with `key_pem` for `host` from the next handshake
    /// on. Returns when it expires (Unix seconds).
    pub(crate) fn install(
        &self,
        host: &str,
        chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<i64, String> {
        let certs = certs_from_pem(chain_pem)?;
        let not_after = not_after(&certs)?;
        let key = Arc::new(certified(certs, key_from_pem(key_pem)?)?);
        let host = host.to_ascii_lowercase();
        self.certs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.clone(), Held { key, not_after });
        self.first
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(host);
        Ok(not_after)
    }

    /// Set (`Some`) or clear the TLS-ALPN-01 answer for `host`: a
    /// certificate and key, DER.
    pub(crate) fn set_alpn(
        &self,
        host: &str,
        answer: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), String> {
        let host = host.to_ascii_lowercase();
        let mut m = self.alpn.write().unwrap_or_else(PoisonError::into_inner);
        match answer {
            None => {
                m.remove(&host);
            }
            Some((cert, key)) => {
                let key = PrivateKeyDer::try_from(key).map_err(|e| e.to_string())?;
                let ck = unchecked(vec![CertificateDer::from(cert)], key)?;
                m.insert(host, Arc::new(ck));
            }
        }
        Ok(())
    }

    /// Set (`Some`) or clear the HTTP-01 answer for `token`.
    pub(crate) fn set_http01(&self, token: &str, answer: Option<(&str, &str)>) {
        let mut m = self.http01.write().unwrap_or_else(PoisonError::into_inner);
        match answer {
            None => {
                m.remove(token);
            }
            Some((host, key_auth)) => {
                m.insert(
                    token.to_string(),
                    (host.to_ascii_lowercase(), key_auth.to_string()),
                );
            }
        }
    }

    /// The HTTP-01 answer for `token` asked for at `host`.
    pub(crate) fn http01(&self, host: &str, token: &str) -> Option<String> {
        let m = self.http01.read().unwrap_or_else(PoisonError::into_inner);
        m.get(token)
            .filter(|(h, _)| h.eq_ignore_ascii_case(host.trim_end_matches('.')))
            .map(|(_, k)| k.clone())
    }

    /// Each held certificate's host and expiry (Unix seconds), by host.
    pub(crate) fn expiries(&self) -> Vec<(String, i64)> {
        let m = self.certs.read().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<(String, i64)> = m.iter().map(|(h, c)| (h.clone(), c.not_after)).collect();
        v.sort();
        v
    }

    fn get(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let m = self.certs.read().unwrap_or_else(PoisonError::into_inner);
        m.get(host).map(|c| Arc::clone(&c.key))
    }

    fn fallback(&self) -> Option<Arc<CertifiedKey>> {
        let first = self
            .first
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()?;
        self.get(&first)
    }

    fn alpn_answer(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let m = self.alpn.read().unwrap_or_else(PoisonError::into_inner);
        m.get(host).cloned()
    }
}

#[derive(Debug)]
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    /// With `[tls.acme]`: its certificates and validation answers.
    live: Option<Arc<LiveCerts>>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_ascii_lowercase);
        if let Some(live) = &self.live {
            // RFC 8737: a validation offers exactly `acme-tls/1`.
            let mut alpn = hello.alpn().into_iter().flatten();
            if alpn.next() == Some(ACME_TLS_ALPN) && alpn.next().is_none() {
                return live.alpn_answer(name.as_deref()?);
            }
        }
        if let Some(c) = name.as_deref().and_then(|n| self.by_name.get(n)) {
            return Some(Arc::clone(c));
        }
        if let Some(live) = &self.live {
            if let Some(c) = name.as_deref().and_then(|n| live.get(n)) {
                return Some(c);
            }
        }
        self.default
            .clone()
            .or_else(|| self.live.as_ref().and_then(|l| l.fallback()))
    }
}

/// Host names with their certificate's expiry (Unix seconds).
pub(crate) type Expiries = Vec<(String, i64)>;

/// The server configuration for TLS listeners: ALPN `h2` then `http/1.1`
/// (and `acme-tls/1` when `live` answers ACME validations).
/// Also returns each file certificate's names with its expiry.
pub(crate) fn server_config(
    tls: &Tls,
    live: Option<Arc<LiveCerts>>,
) -> Result<(Arc<rustls::ServerConfig>, Expiries), BuildError> {
    let mut expiry = Vec::new();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut by_name = HashMap::new();
    let mut default = None;
    for (i, c) in tls.certificate.iter().enumerate() {
        let kp = format!("tls.certificate[{i}]");
        let certs = load_certs(&c.cert, &format!("{kp}.cert"))?;
        let ends = not_after(&certs).map_err(|e| invalid(&format!("{kp}.cert"), e))?;
        expiry.extend(
            c.server_names
                .iter()
                .map(|n| (n.to_ascii_lowercase(), ends)),
        );
        let key = load_key(&c.key, &format!("{kp}.key"))?;
        let ck = Arc::new(certified(certs, key).map_err(|e| invalid(&format!("{kp}.key"), e))?);
        if default.is_none() {
            default = Some(Arc::clone(&ck));
        }
        for n in &c.server_names {
            by_name.insert(n.to_ascii_lowercase(), Arc::clone(&ck));
        }
    }
    if default.is_none() && live.is_none() {
        return Err(invalid("tls.certificate", "no certificate"));
    }
    let acme = live.is_some();
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver {
            by_name,
            default,
            live,
        }));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    if acme {
        cfg.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
    }
    Ok((Arc::new(cfg), expiry))
}

/// A client configuration for an origin: its CA file, or the public web roots.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    key_path: &str,
) -> Result<Arc<rustls::ClientConfig>, BuildError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(p) => {
            for c in load_certs(p, key_path)? {
                roots
                    .add(c)
                    .map_err(|e| invalid(key_path, format!("{}: {e}", p.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(key_path, e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
