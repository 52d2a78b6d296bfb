//! The HTTPS client for the CA: instant-acme's hyper client, but with
//! every answer's body bounded (a CA, or whatever answers at its address,
//! that sends more than [`MAX_BODY`] gets an error, not the memory), TLS
//! with ring and either the operator's root (`ca`) or the public web roots.
//! Time is bounded by the caller (every call is under `timeout`).

use crate::AcmeError;
use bytes::Bytes;
use http_body_util::Limited;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

/// The largest answer read from the CA (a chain is a few KiB; a directory
/// or an order far less).
pub(crate) const MAX_BODY: usize = 1024 * 1024;

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

pub(crate) struct Bounded(Client<Https, BodyWrapper<Bytes>>);

impl Bounded {
    /// A client trusting `ca` (a PEM file of roots) or the public web roots.
    pub(crate) fn new(ca: Option<&Path>) -> Result<Bounded, AcmeError> {
        let setup = |m: String| AcmeError::Setup(format!("the HTTPS client for the CA: {m}"));
        let mut roots = rustls::RootCertStore::empty();
        match ca {
            Some(p) => {
                let pem = std::fs::read(p)
                    .map_err(|e| setup(format!("cannot read {}: {e}", p.display())))?;
                let mut n = 0;
                for c in <rustls_pki_types::CertificateDer<'static> as rustls_pki_types::pem::PemObject>::pem_slice_iter(&pem) {
                    let c = c.map_err(|e| setup(format!("{}: {e:?}", p.display())))?;
                    roots
                        .add(c)
                        .map_err(|e| setup(format!("{}: {e}", p.display())))?;
                    n += 1;
                }
                if n == 0 {
                    return Err(setup(format!("{}: no PEM certificate", p.display())));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| setup(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(Bounded(Client::builder(TokioExecutor::new()).build(https)))
    }
}

impl HttpClient for Bounded {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = self.0.request(req);
        Box::pin(async move {
            match fut.await {
                Ok(rsp) => Ok(BytesResponse::from(rsp.map(|b| Limited::new(b, MAX_BODY)))),
                Err(e) => Err(instant_acme::Error::Other(Box::new(e))),
            }
        })
    }
}
