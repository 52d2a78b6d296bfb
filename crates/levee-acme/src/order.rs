//! One ACME order for one host (RFC 8555 §7.4): the account (loaded from
//! the state directory, or created once and kept), the order, the
//! challenge answered through the edge (TLS-ALPN-01 or HTTP-01, in the
//! configured preference), finalisation with a fresh P-256 key, the
//! chain. Every call to the CA gives up after the configured timeout.
//! The answers set on the edge are cleared whatever the outcome.

use crate::store::Store;
use crate::{AcmeError, Edge, Settings};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use std::future::Future;
use std::time::Duration;

/// An error with its causes ("client error (Connect): invalid peer certificate: …").
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

/// Run `f` under the call timeout.
async fn call<T, E: std::error::Error + 'static>(
    timeout: Duration,
    what: &'static str,
    f: impl Future<Output = Result<T, E>>,
) -> Result<T, AcmeError> {
    match tokio::time::timeout(timeout, f).await {
        Err(_) => Err(AcmeError::Timeout {
            what,
            after: timeout,
        }),
        Ok(Err(e)) => Err(AcmeError::Ca {
            what,
            detail: chain(&e),
        }),
        Ok(Ok(v)) => Ok(v),
    }
}

fn builder(s: &Settings) -> Result<instant_acme::AccountBuilder, AcmeError> {
    let http = crate::client::Bounded::new(s.ca.as_deref())?;
    Ok(Account::builder_with_http(Box::new(http)))
}

/// The account: the stored one for this directory, else a new one (kept).
pub(crate) async fn account(s: &Settings, store: &Store) -> Result<Account, AcmeError> {
    let path = store.account_path(&s.directory);
    if let Ok(text) = std::fs::read(&path) {
        if let Ok(creds) = serde_json::from_slice::<AccountCredentials>(&text) {
            return call(
                s.timeout,
                "loading the directory",
                builder(s)?.from_credentials(creds),
            )
            .await;
        }
        eprintln!(
            "levee: acme: {} does not hold account credentials; creating a new account",
            path.display()
        );
    }
    let contact = format!("mailto:{}", s.email);
    let (account, creds) = call(
        s.timeout,
        "creating the account",
        builder(s)?.create(
            &NewAccount {
                contact: &[&contact],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            s.directory.clone(),
            None,
        ),
    )
    .await?;
    let json = serde_json::to_vec(&creds).map_err(|e| AcmeError::Setup(e.to_string()))?;
    store.write(&path, &json).map_err(AcmeError::State)?;
    Ok(account)
}

/// Forget the stored account (the CA no longer knows it).
pub(crate) fn forget_account(s: &Settings, store: &Store) {
    let _ = std::fs::remove_file(store.account_path(&s.directory));
}

/// What an order gave: the chain (PEM, leaf first) and its key (PEM).
pub(crate) struct Issued {
    pub chain: String,
    pub key: String,
    pub challenge: &'static str,
}

fn name(t: &ChallengeType) -> &'static str {
    match t {
        ChallengeType::TlsAlpn01 => "tls-alpn-01",
        ChallengeType::Http01 => "http-01",
        _ => "other",
    }
}

/// The TLS-ALPN-01 answer: a self-signed certificate for `host` carrying
/// the key authorisation's digest in a critical acmeIdentifier extension
/// (RFC 8737 §3), and its key (both DER).
fn alpn_answer(host: &str, digest: &[u8]) -> Result<(Vec<u8>, Vec<u8>), AcmeError> {
    let err = |e: rcgen::Error| AcmeError::Setup(format!("the TLS-ALPN-01 certificate: {e}"));
    let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).map_err(err)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(err)?;
    let cert = params.self_signed(&key).map_err(err)?;
    Ok((cert.der().to_vec(), key.serialize_der()))
}

/// Serve an answer another edge of the fleet posted.
pub(crate) fn serve_answer(
    edge: &dyn Edge,
    host: &str,
    a: &crate::Answer,
) -> Result<(), AcmeError> {
    match a.challenge {
        ChallengeType::TlsAlpn01 => {
            let digest =
                ring::digest::digest(&ring::digest::SHA256, a.key_authorization.as_bytes());
            let (cert, key) = alpn_answer(host, digest.as_ref())?;
            edge.alpn(host, Some((cert, key))).map_err(AcmeError::Setup)
        }
        _ => {
            edge.http01(&a.token, Some((host, &a.key_authorization)));
            Ok(())
        }
    }
}

pub(crate) fn clear_answer(edge: &dyn Edge, host: &str, a: &crate::Answer) {
    match a.challenge {
        ChallengeType::TlsAlpn01 => {
            let _ = edge.alpn(host, None);
        }
        _ => edge.http01(&a.token, None),
    }
}

/// Clears the edge's answers when the order is done, however it ends.
struct Answers<'a> {
    edge: &'a dyn Edge,
    host: &'a str,
    tokens: Vec<String>,
    alpn: bool,
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        for t in &self.tokens {
            self.edge.http01(t, None);
        }
        if self.alpn {
            let _ = self.edge.alpn(self.host, None);
        }
    }
}

/// Order a certificate for `host`.
pub(crate) async fn order(
    s: &Settings,
    account: &Account,
    edge: &dyn Edge,
    host: &str,
    replaces: Option<instant_acme::CertificateIdentifier<'static>>,
    share: Option<(std::sync::Arc<dyn crate::Coordinator>, Duration)>,
) -> Result<Issued, AcmeError> {
    let ids = [Identifier::Dns(host.to_string())];
    let mut new = NewOrder::new(&ids);
    if let Some(r) = replaces {
        new = new.replaces(r);
    }
    let mut order = call(s.timeout, "creating the order", account.new_order(&new)).await?;
    let mut answers = Answers {
        edge,
        host,
        tokens: Vec::new(),
        alpn: false,
    };
    let mut used: &'static str = "none (already valid)";
    let mut authzs = order.authorizations();
    loop {
        let next = match tokio::time::timeout(s.timeout, authzs.next()).await {
            Err(_) => {
                return Err(AcmeError::Timeout {
                    what: "fetching the authorisation",
                    after: s.timeout,
                })
            }
            Ok(None) => break,
            Ok(Some(r)) => r.map_err(|e| AcmeError::Ca {
                what: "fetching the authorisation",
                detail: chain(&e),
            })?,
        };
        let mut authz = next;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(AcmeError::Refused(format!(
                    "the authorisation for {host} is {other:?}"
                )))
            }
        }
        let offered: Vec<ChallengeType> =
            authz.challenges.iter().map(|c| c.r#type.clone()).collect();
        let Some(kind) = s.challenges.iter().find(|k| offered.contains(k)).cloned() else {
            return Err(AcmeError::Refused(format!(
                "the CA offers {:?} for {host}; this edge answers {:?}",
                offered.iter().map(name).collect::<Vec<_>>(),
                s.challenges.iter().map(name).collect::<Vec<_>>()
            )));
        };
        let Some(mut ch) = authz.challenge(kind.clone()) else {
            continue;
        };
        let ka = ch.key_authorization();
        match kind {
            ChallengeType::TlsAlpn01 => {
                let (cert, key) = alpn_answer(host, ka.digest().as_ref())?;
                edge.alpn(host, Some((cert, key)))
                    .map_err(AcmeError::Setup)?;
                answers.alpn = true;
            }
            _ => {
                edge.http01(&ch.token, Some((host, ka.as_str())));
                answers.tokens.push(ch.token.clone());
            }
        }
        used = name(&kind);
        if let Some((c, ttl)) = &share {
            // The CA may reach another edge: give it the answer first.
            let a = crate::Answer {
                challenge: kind.clone(),
                token: ch.token.clone(),
                key_authorization: ka.as_str().to_string(),
            };
            let (c, h, ttl) = (std::sync::Arc::clone(c), host.to_string(), *ttl);
            match tokio::task::spawn_blocking(move || c.post_answers(&h, &[a], ttl)).await {
                Ok(Ok(())) => tokio::time::sleep(crate::PROPAGATE).await,
                Ok(Err(e)) => eprintln!("levee: acme: {host}: could not post the validation answer to the fleet ({e}); only this edge can answer the CA"),
                Err(e) => eprintln!("levee: acme: {host}: could not post the validation answer to the fleet ({e})"),
            }
        }
        call(s.timeout, "marking the challenge ready", ch.set_ready()).await?;
    }
    let policy = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(s.timeout);
    let status = call(
        s.timeout + Duration::from_secs(1),
        "waiting for validation",
        order.poll_ready(&policy),
    )
    .await?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Refused(format!(
            "the CA did not validate {host} by {used} (order {status:?}): {}",
            why_invalid(s, &mut order).await
        )));
    }
    let key = call(s.timeout, "finalising the order", order.finalize()).await?;
    let chain = call(
        s.timeout + Duration::from_secs(1),
        "downloading the certificate",
        order.poll_certificate(&policy),
    )
    .await?;
    drop(answers);
    Ok(Issued {
        chain,
        key,
        challenge: used,
    })
}

/// The CA's own words on why validation failed (its challenge errors).
async fn why_invalid(s: &Settings, order: &mut instant_acme::Order) -> String {
    let mut out = Vec::new();
    let mut authzs = order.authorizations();
    while let Ok(Some(Ok(mut a))) = tokio::time::timeout(s.timeout, authzs.next()).await {
        let _ = tokio::time::timeout(s.timeout, a.refresh()).await;
        for c in &a.challenges {
            if let Some(e) = &c.error {
                out.push(format!("{}: {e}", name(&c.r#type)));
            }
        }
    }
    if out.is_empty() {
        "the CA gave no reason".to_string()
    } else {
        out.join("; ")
    }
}
