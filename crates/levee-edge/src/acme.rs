//! What the ACME engine (the binary's `[tls.acme]`, through `levee-acme`)
//! calls on the edge: install a certificate, set or clear a validation's
//! answer (TLS-ALPN-01 in the TLS resolver, HTTP-01 among the edge's own
//! paths, answered before any limit or challenge). Called from the
//! engine's own thread; nothing here waits on the CA.

use crate::Shared;

/// The HTTP-01 path prefix (RFC 8555 §8.3).
pub(crate) const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

impl Shared {
    /// Serve `chain_pem` (leaf first) with `key_pem` for `host` from the
    /// next TLS handshake on; connections already open keep theirs.
    /// Returns the certificate's expiry (Unix seconds), or why it cannot be
    /// used (the old certificate stays).
    pub fn acme_install(
        &self,
        host: &str,
        chain_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<i64, String> {
        self.state.load().live.install(host, chain_pem, key_pem)
    }

    /// Set (a self-signed certificate and its PKCS#8 key, DER) or clear the
    /// TLS-ALPN-01 answer for `host`.
    pub fn acme_alpn(&self, host: &str, answer: Option<(Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        self.state.load().live.set_alpn(host, answer)
    }

    /// Set (host, key authorisation) or clear the HTTP-01 answer for `token`.
    pub fn acme_http01(&self, token: &str, answer: Option<(&str, &str)>) {
        self.state.load().live.set_http01(token, answer);
    }
}

/// `levee_tls_certificate_expiry_seconds{host}`: seconds left before each
/// served certificate expires (negative once it has), files and ACME's.
pub(crate) fn expiry_metrics(st: &crate::state::State, now_unix: i64) -> String {
    let mut all: Vec<(String, i64)> = st.file_expiry.clone();
    for (h, t) in st.live.expiries() {
        if !all.iter().any(|(n, _)| *n == h) {
            all.push((h, t));
        }
    }
    if all.is_empty() {
        return String::new();
    }
    all.sort();
    let mut out = String::from(
        "# HELP levee_tls_certificate_expiry_seconds seconds before the certificate served for host expires (from files or ACME)\n# TYPE levee_tls_certificate_expiry_seconds gauge\n",
    );
    for (h, t) in all {
        out.push_str(&format!(
            "levee_tls_certificate_expiry_seconds{{host=\"{}\"}} {}\n",
            escape(&h),
            t - now_unix
        ));
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
