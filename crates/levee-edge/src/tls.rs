//! TLS configuration: server certificates chosen by SNI, and client
//! configuration for origins that speak TLS.

use crate::error::BuildError;
use levee_config::Tls;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

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

/// Load a PEM certificate chain.
pub(crate) fn load_certs(
    path: &Path,
    key_path: &str,
) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let pem = read(path, key_path)?;
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut pem.as_slice()).collect();
    let certs = certs.map_err(|e| invalid(key_path, format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            key_path,
            format!("{}: no PEM certificate found", path.display()),
        ));
    }
    Ok(certs)
}

fn load_key(path: &Path, key_path: &str) -> Result<PrivateKeyDer<'static>, BuildError> {
    let pem = read(path, key_path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| invalid(key_path, format!("{}: {e}", path.display())))?
        .ok_or_else(|| {
            invalid(
                key_path,
                format!("{}: no PEM private key found", path.display()),
            )
        })
}

#[derive(Debug)]
struct SniResolver {
    by_name: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let cert = hello
            .server_name()
            .and_then(|n| self.by_name.get(&n.to_ascii_lowercase()))
            .unwrap_or(&self.default);
        Some(Arc::clone(cert))
    }
}

/// The server configuration for TLS listeners: ALPN `h2` then `http/1.1`.
pub(crate) fn server_config(tls: &Tls) -> Result<Arc<rustls::ServerConfig>, BuildError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut by_name = HashMap::new();
    let mut default = None;
    for (i, c) in tls.certificate.iter().enumerate() {
        let kp = format!("tls.certificate[{i}]");
        let certs = load_certs(&c.cert, &format!("{kp}.cert"))?;
        let key = load_key(&c.key, &format!("{kp}.key"))?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| invalid(&format!("{kp}.key"), format!("unusable key: {e}")))?;
        let ck = Arc::new(CertifiedKey::new(certs, signing));
        if default.is_none() {
            default = Some(Arc::clone(&ck));
        }
        for n in &c.server_names {
            by_name.insert(n.to_ascii_lowercase(), Arc::clone(&ck));
        }
    }
    let default = default.ok_or_else(|| invalid("tls.certificate", "no certificate"))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls", e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SniResolver { by_name, default }));
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
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
