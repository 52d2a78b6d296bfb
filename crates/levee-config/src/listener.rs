//! `[[listener]]` and `[tls]`: where the edge listens, and its certificates.

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One listening socket.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// `ip:port`; port 0 picks a free port (tests).
    pub address: SocketAddr,
    /// Terminate TLS here (needs `[[tls.certificate]]`).
    #[serde(default)]
    pub tls: bool,
    /// Expect a PROXY protocol v1/v2 header from trusted peers (`[trust] proxies`).
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Accept cleartext HTTP/2 with prior knowledge (h2c) on a non-TLS listener.
    #[serde(default = "yes")]
    pub h2c: bool,
}

fn yes() -> bool {
    true
}

/// TLS certificates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default)]
    pub certificate: Vec<Certificate>,
}

/// A certificate chain and key for a set of server names.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    /// SNI names served with this certificate; the first certificate is also the
    /// fallback for clients that send no SNI.
    pub server_names: Vec<String>,
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}
