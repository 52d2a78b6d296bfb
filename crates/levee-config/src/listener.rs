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

/// TLS certificates: files (`[[tls.certificate]]`) and/or automatic ones
/// (`[tls.acme]`). A file's certificate wins for the names it lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default)]
    pub certificate: Vec<Certificate>,
    /// Certificates from an ACME certificate authority (RFC 8555).
    pub acme: Option<Acme>,
}

/// Let's Encrypt's production directory.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Let's Encrypt's staging directory (untrusted certificates, generous limits).
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// `[tls.acme]`: the edge orders, answers the challenges for, stores and
/// renews its own certificates.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Acme {
    /// The CA's directory URL (default: Let's Encrypt production; try
    /// staging, [`LETS_ENCRYPT_STAGING`], first).
    pub directory: String,
    /// The account's contact (the CA writes about expiry and incidents).
    pub email: String,
    /// Host names to certify (default: every site's hosts, wildcards left out).
    pub hosts: Vec<String>,
    /// A PEM file of the root to trust for the directory's HTTPS (test CAs
    /// such as Pebble); default: the public web roots (Mozilla's, built in).
    pub ca: Option<String>,
    /// Where the account and the certificates are kept (keys mode 0600).
    pub state_dir: String,
    /// `auto` (TLS-ALPN-01 when there is a TLS listener, else HTTP-01),
    /// `tls-alpn-01` or `http-01`.
    pub challenge: AcmeChallenge,
    /// After a failure, the first wait before trying again (doubling up to
    /// `retry_max`); the old certificate is kept meanwhile.
    pub retry: crate::types::Dur,
    pub retry_max: crate::types::Dur,
    /// Every call to the CA gives up after this.
    pub timeout: crate::types::Dur,
}

impl Default for Acme {
    fn default() -> Self {
        Acme {
            directory: LETS_ENCRYPT.to_string(),
            email: String::new(),
            hosts: Vec::new(),
            ca: None,
            state_dir: "/var/lib/levee/acme".to_string(),
            challenge: AcmeChallenge::Auto,
            retry: crate::types::Dur::secs(60),
            retry_max: crate::types::Dur::secs(6 * 3600),
            timeout: crate::types::Dur::secs(30),
        }
    }
}

/// Which challenge the edge answers.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum AcmeChallenge {
    #[default]
    Auto,
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    #[serde(rename = "http-01")]
    Http01,
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
