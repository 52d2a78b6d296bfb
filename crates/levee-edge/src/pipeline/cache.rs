//! The micro-cache's part of a request: look the key up (fresh copies
//! answer, stale ones answer when the origins are saturated), collapse
//! concurrent misses behind one leader, bound the origin wait when a stale
//! copy is in hand, and store a cacheable response read whole. The store
//! itself ([`crate::cache`]) knows nothing of origins or exchanges.

use crate::cache::{response_ttl_ms, Entry, Join, Key, Leader, Lookup, SiteCache};
use crate::upstream::{Exchange, OriginSet, ProxyError};
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// What the cache said about a request before the origin is asked.
#[derive(Default)]
pub(super) struct Probe {
    pub key: Option<(Arc<SiteCache>, Key)>,
    /// A stale copy, for when the origin fails or is slow.
    pub stale: Option<Arc<Entry>>,
    /// This request fetches the key for the others.
    pub leader: Option<Leader>,
    /// Answer with this (and the `x-levee-cache` label) without asking the origin.
    pub answer: Option<(Arc<Entry>, &'static str)>,
}

impl Probe {
    /// Look `key` up: fresh copies answer; stale ones answer at once when the
    /// origin is saturated; otherwise join (or lead) the fetch of the key.
    pub(super) async fn run(origins: &OriginSet, cache: &Arc<SiteCache>, key: Key) -> Probe {
        let mut p = Probe::default();
        match cache.lookup(&key, crate::clock::now_ms()) {
            Lookup::Fresh(e) => {
                cache.stats.hits.fetch_add(1, Ordering::Relaxed);
                p.answer = Some((e, "HIT"));
                return p;
            }
            Lookup::Stale(e) => p.stale = Some(e),
            Lookup::Miss => {}
        }
        if p.stale.is_some() && origins.saturated() {
            cache.stats.stale.fetch_add(1, Ordering::Relaxed);
            p.answer = p.stale.take().map(|e| (e, "STALE"));
            return p;
        }
        match cache
            .join(&key, cache.config().stale_after.as_duration())
            .await
        {
            Join::Leader(l) => p.leader = Some(l),
            Join::Filled => match cache.lookup(&key, crate::clock::now_ms()) {
                Lookup::Fresh(e) => {
                    cache.stats.hits.fetch_add(1, Ordering::Relaxed);
                    p.answer = Some((e, "HIT"));
                    return p;
                }
                Lookup::Stale(e) => p.stale = Some(e),
                Lookup::Miss => {}
            },
        }
        cache.stats.misses.fetch_add(1, Ordering::Relaxed);
        p.key = Some((Arc::clone(cache), key));
        p
    }

    /// Run the origin exchange; with a stale copy in hand, a slow origin is
    /// not waited for beyond `stale_after` (it then counts as a timeout).
    pub(super) async fn bounded<T>(
        &self,
        fwd: impl std::future::Future<Output = Result<T, ProxyError>>,
    ) -> Result<T, ProxyError> {
        match (&self.stale, &self.key) {
            (Some(_), Some((c, _))) => {
                tokio::time::timeout(c.config().stale_after.as_duration(), fwd)
                    .await
                    .unwrap_or(Err(ProxyError::Timeout))
            }
            _ => fwd.await,
        }
    }

    /// After the origin's response head: if this request leads the fetch of a
    /// key and the response may be cached, read its body whole and store it.
    /// `None`: not cacheable (relay as usual); `Some(None)`: the body could
    /// not be read (the exchange is spent); `Some(Some(entry))`: answer with it.
    pub(super) async fn fill(
        &self,
        ex: &mut Exchange,
        head_request: bool,
    ) -> Option<Option<Arc<Entry>>> {
        let (c, k) = self.key.as_ref().filter(|_| !head_request)?;
        let status = ex.head.status;
        let len = match ex.head.framing {
            levee_http::h1::Framing::Length(n) => Some(n),
            _ => None,
        };
        let fields: Vec<(&[u8], &[u8])> = ex.headers().collect();
        let ttl = response_ttl_ms(c.config(), status, &fields, len)?;
        drop(fields);
        let deadline = ex.origin.response_timeout;
        let Some(data) = read_body(ex, len.unwrap_or(0), deadline).await else {
            return Some(None);
        };
        Some(Some(c.store(
            k,
            status,
            ex.headers(),
            data,
            ttl,
            crate::clock::now_ms(),
        )))
    }

    /// The origin failed or was too slow: the stale copy, if any.
    pub(super) fn fallback(&mut self) -> Option<(Arc<Entry>, &'static str)> {
        let e = self.stale.take()?;
        if let Some((c, _)) = &self.key {
            c.stats.stale.fetch_add(1, Ordering::Relaxed);
        }
        Some((e, "STALE"))
    }
}

/// Read a whole response body of `len` bytes from an origin exchange, before `deadline`.
pub(super) async fn read_body(ex: &mut Exchange, len: u64, deadline: Duration) -> Option<Bytes> {
    let mut body = bytes::BytesMut::with_capacity(len as usize);
    let read = async {
        while !ex.body.is_done() {
            match ex.body.next(&mut ex.conn).await {
                Ok(Some(d)) => {
                    if (body.len() + d.len()) as u64 > len {
                        return false;
                    }
                    body.extend_from_slice(&d);
                }
                Ok(None) => break,
                Err(_) => return false,
            }
        }
        true
    };
    match tokio::time::timeout(deadline, read).await {
        Ok(true) if body.len() as u64 == len => Some(body.freeze()),
        _ => None,
    }
}
