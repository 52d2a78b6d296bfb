//! The micro-cache: cacheable GET responses kept for a short time, bounded
//! in entries and bytes; concurrent misses for the same key collapse into
//! one origin request; stale copies are served, within a bound, when the
//! origin fails, is saturated, or is slow.
//!
//! What is cached: GET (and HEAD, from the GET entry) without
//! `Authorization` and without cookies other than Levee's clearance; responses
//! 200, 203, 204, 301, 404 and 410 with a `Content-Length` up to
//! `max_object`, no `Set-Cookie`, no `Vary` other than `Accept-Encoding`, and
//! a `Cache-Control` that allows shared caching (`no-store`, `no-cache`,
//! `private`, `max-age=0` do not). Freshness: `s-maxage`, else `max-age`,
//! capped at `ttl`; without either, `ttl` if `cache_unmarked`.
//!
//! What it does not do: revalidate (no conditional requests), cache bodies
//! of unknown length, or vary on anything but the key.

use bytes::Bytes;
use levee_config::IgnoreQuery;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Notify;

/// What the cache key is made of: the normalised request.
pub(crate) struct CacheRequest<'a> {
    pub method: &'a [u8],
    /// The routed host name.
    pub host: &'a str,
    pub target: &'a levee_http::target::Target,
    pub https: bool,
    /// Every request field line, in order.
    pub fields: &'a [(&'a [u8], &'a [u8])],
    /// The clearance cookie's name (the only cookie that does not bypass the cache).
    pub clearance_cookie: &'a str,
}

/// A stored response.
#[derive(Debug)]
pub(crate) struct Entry {
    key: Box<[u8]>,
    pub status: u16,
    pub headers: Vec<(Bytes, Bytes)>,
    pub body: Bytes,
    stored_ms: u64,
    fresh_until_ms: u64,
    stale_until_ms: u64,
}

impl Entry {
    fn size(&self) -> u64 {
        (self.body.len()
            + self.key.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 32)
                .sum::<usize>()
            + 128) as u64
    }

    /// Seconds since it was stored.
    pub(crate) fn age_s(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_ms) / 1000
    }
}

/// What a lookup found.
pub(crate) enum Lookup {
    Fresh(Arc<Entry>),
    Stale(Arc<Entry>),
    Miss,
}

/// A request's cache key.
#[derive(Debug, Clone)]
pub(crate) struct Key {
    bytes: Vec<u8>,
    hash: u64,
}

/// Counters for `/status` and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct CacheStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    pub collapsed: AtomicU64,
    pub stored: AtomicU64,
    pub evicted: AtomicU64,
}

/// One site's cache.
#[derive(Debug)]
pub(crate) struct SiteCache {
    cfg: levee_config::Cache,
    map: Mutex<Store>,
    inflight: Mutex<HashMap<u64, Arc<Notify>>>,
    hasher: std::collections::hash_map::RandomState,
    pub stats: CacheStats,
}

#[derive(Debug, Default)]
struct Store {
    entries: HashMap<u64, Arc<Entry>>,
    bytes: u64,
}

/// Held by the request that fetches a key; the others wait for it.
pub(crate) struct Leader {
    cache: Arc<SiteCache>,
    hash: u64,
}

impl Drop for Leader {
    fn drop(&mut self) {
        let n = self
            .cache
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.hash);
        if let Some(n) = n {
            n.notify_waiters();
        }
    }
}

/// Outcome of joining the fetch of a key.
pub(crate) enum Join {
    /// Fetch it (and store it if cacheable).
    Leader(Leader),
    /// Another request fetched it; look again.
    Filled,
}

fn header<'a>(headers: &'a [(&[u8], &[u8])], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| *v)
}

/// Freshness in ms allowed by the response's fields, if it may be cached at all.
pub(crate) fn response_ttl_ms(
    cfg: &levee_config::Cache,
    status: u16,
    headers: &[(&[u8], &[u8])],
    content_length: Option<u64>,
) -> Option<u64> {
    if !matches!(status, 200 | 203 | 204 | 301 | 404 | 410) {
        return None;
    }
    let len = if status == 204 { 0 } else { content_length? };
    if len > cfg.max_object.0 {
        return None;
    }
    if header(headers, "set-cookie").is_some() {
        return None;
    }
    if let Some(v) = header(headers, "vary") {
        let ok = v
            .split(|&b| b == b',')
            .map(|t| t.trim_ascii())
            .all(|t| t.eq_ignore_ascii_case(b"accept-encoding") || t.is_empty());
        if !ok {
            return None;
        }
    }
    let cap = cfg.ttl.as_duration().as_millis() as u64;
    let cc = levee_http::fields::CacheControl::parse(
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cache-control"))
            .map(|(_, v)| *v),
    );
    if cc.no_store || cc.no_cache || cc.private {
        return None;
    }
    let (s_maxage, max_age) = (cc.s_maxage, cc.max_age);
    match s_maxage.or(max_age) {
        Some(0) => None,
        Some(s) => Some(s.saturating_mul(1000).min(cap)),
        None if cfg.cache_unmarked => Some(cap),
        None => None,
    }
}

impl SiteCache {
    pub(crate) fn new(cfg: &levee_config::Cache) -> Arc<SiteCache> {
        Arc::new(SiteCache {
            cfg: cfg.clone(),
            map: Mutex::default(),
            inflight: Mutex::default(),
            hasher: std::collections::hash_map::RandomState::new(),
            stats: CacheStats::default(),
        })
    }

    pub(crate) fn config(&self) -> &levee_config::Cache {
        &self.cfg
    }

    /// (entries, bytes)
    #[cfg(test)]
    pub(crate) fn size(&self) -> (usize, u64) {
        let m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        (m.entries.len(), m.bytes)
    }

    /// The key of a cacheable request, or `None` (not a GET or HEAD, or it
    /// carries credentials). The key holds the scheme, the host, the
    /// accepted content codings (for `Vary: Accept-Encoding`), the path and
    /// the query. When junk query parameters are dropped from the key
    /// (`ignore_query`), they are dropped from the request too: the second
    /// value is the target to forward, so that the origin never answers a
    /// query the key does not hold.
    pub(crate) fn key(
        &self,
        r: &CacheRequest<'_>,
        under_attack: bool,
    ) -> Option<(Key, Option<String>)> {
        if r.method != b"GET" && r.method != b"HEAD" {
            return None;
        }
        const CREDENTIALS: [&[u8]; 6] = [
            b"authorization",
            b"proxy-authorization",
            b"x-api-key",
            b"x-auth-token",
            b"x-access-token",
            b"x-csrf-token",
        ];
        let lines = |name: &'static [u8]| {
            r.fields
                .iter()
                .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
        };
        for (n, _) in r.fields {
            if CREDENTIALS.iter().any(|c| c.eq_ignore_ascii_case(n))
                || self
                    .cfg
                    .bypass_headers
                    .iter()
                    .any(|c| c.as_bytes().eq_ignore_ascii_case(n))
            {
                return None;
            }
        }
        // Cookies other than the clearance may select per-user content.
        if !levee_http::fields::only_cookie(lines(b"cookie"), r.clearance_cookie) {
            return None;
        }
        let drop_junk = match self.cfg.ignore_query {
            IgnoreQuery::Always => true,
            IgnoreQuery::UnderAttack => under_attack,
            IgnoreQuery::Never => false,
        };
        let path = r.target.path();
        let mut forward = None;
        let mut kept = String::new();
        let query = match r.target.query() {
            Some(q) if drop_junk => {
                for kv in q.split('&') {
                    let name = kv.split('=').next().unwrap_or("");
                    if self.cfg.keep_params.iter().any(|k| k == name) {
                        kept.push(if kept.is_empty() { '?' } else { '&' });
                        kept.push_str(kv);
                    }
                }
                forward = Some(format!("{path}{kept}"));
                kept.as_str()
            }
            Some(_) => &r.target.as_str()[path.len()..],
            None => "",
        };
        let enc = levee_http::fields::accepted_encodings(lines(b"accept-encoding"));
        let mut bytes = Vec::with_capacity(r.host.len() + r.target.as_str().len() + 12);
        bytes.extend_from_slice(if r.https { b"https " } else { b"http " });
        bytes.extend_from_slice(r.host.as_bytes());
        bytes.push(b' ');
        bytes.push(b'a' + enc);
        bytes.push(b' ');
        bytes.extend_from_slice(path.as_bytes());
        bytes.extend_from_slice(query.as_bytes());
        let mut h = self.hasher.build_hasher();
        h.write(&bytes);
        Some((
            Key {
                hash: h.finish(),
                bytes,
            },
            forward,
        ))
    }

    pub(crate) fn lookup(&self, key: &Key, now_ms: u64) -> Lookup {
        let m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match m.entries.get(&key.hash) {
            Some(e) if *e.key == *key.bytes => {
                if now_ms < e.fresh_until_ms {
                    Lookup::Fresh(Arc::clone(e))
                } else if now_ms < e.stale_until_ms {
                    Lookup::Stale(Arc::clone(e))
                } else {
                    Lookup::Miss
                }
            }
            _ => Lookup::Miss,
        }
    }

    /// Become the one request fetching `key`, or wait (at most `wait`) for the one that is.
    pub(crate) async fn join(self: &Arc<Self>, key: &Key, wait: Duration) -> Join {
        let notify = {
            let mut f = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            match f.get(&key.hash) {
                Some(n) => Arc::clone(n),
                None => {
                    f.insert(key.hash, Arc::new(Notify::new()));
                    return Join::Leader(Leader {
                        cache: Arc::clone(self),
                        hash: key.hash,
                    });
                }
            }
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // The leader may have finished between the lock and `enable`.
        let still = self
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key.hash)
            .is_some_and(|n| Arc::ptr_eq(n, &notify));
        if still {
            let _ = tokio::time::timeout(wait, notified).await;
        }
        self.stats.collapsed.fetch_add(1, Ordering::Relaxed);
        Join::Filled
    }

    /// Store a response (unless it alone exceeds `max_bytes`); returns the entry.
    pub(crate) fn store<'a>(
        &self,
        key: &Key,
        status: u16,
        headers: impl Iterator<Item = (&'a [u8], &'a [u8])>,
        body: Bytes,
        ttl_ms: u64,
        now_ms: u64,
    ) -> Arc<Entry> {
        const DROP: [&[u8]; 4] = [b"connection", b"keep-alive", b"transfer-encoding", b"age"];
        let e = Arc::new(Entry {
            key: key.bytes.clone().into_boxed_slice(),
            status,
            headers: headers
                .filter(|(n, _)| !DROP.iter().any(|d| n.eq_ignore_ascii_case(d)))
                .map(|(n, v)| (Bytes::copy_from_slice(n), Bytes::copy_from_slice(v)))
                .collect(),
            body,
            stored_ms: now_ms,
            fresh_until_ms: now_ms + ttl_ms,
            stale_until_ms: now_ms + ttl_ms + self.cfg.stale.as_duration().as_millis() as u64,
        });
        let size = e.size();
        if size > self.cfg.max_bytes.0 {
            return e;
        }
        let mut m = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = m.entries.insert(key.hash, Arc::clone(&e)) {
            m.bytes -= old.size();
        }
        m.bytes += size;
        self.stats.stored.fetch_add(1, Ordering::Relaxed);
        let max_entries = self.cfg.max_entries.max(1) as usize;
        if m.entries.len() > max_entries || m.bytes > self.cfg.max_bytes.0 {
            self.evict(&mut m, now_ms, max_entries);
        }
        e
    }

    /// Drop expired entries, then the oldest, down to 90% of the bounds.
    fn evict(&self, m: &mut Store, now_ms: u64, max_entries: usize) {
        let before = m.entries.len();
        m.entries.retain(|_, e| e.stale_until_ms > now_ms);
        let target_n = max_entries * 9 / 10;
        let target_b = self.cfg.max_bytes.0 / 10 * 9;
        let mut bytes: u64 = m.entries.values().map(|e| e.size()).sum();
        if m.entries.len() > target_n || bytes > target_b {
            let mut by_age: Vec<(u64, u64)> =
                m.entries.iter().map(|(k, e)| (e.stored_ms, *k)).collect();
            by_age.sort_unstable();
            for (_, k) in by_age {
                if m.entries.len() <= target_n && bytes <= target_b {
                    break;
                }
                if let Some(e) = m.entries.remove(&k) {
                    bytes -= e.size();
                }
            }
        }
        m.bytes = bytes;
        self.stats
            .evicted
            .fetch_add((before - m.entries.len()) as u64, Ordering::Relaxed);
    }
}

/// The extra fields of a cached answer.
pub(crate) fn extra_headers(e: &Entry, label: &'static str) -> [(&'static [u8], Vec<u8>); 2] {
    [
        (b"x-levee-cache", label.as_bytes().to_vec()),
        (
            b"age",
            e.age_s(crate::clock::now_ms()).to_string().into_bytes(),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> levee_config::Cache {
        levee_config::Cache {
            enabled: true,
            max_entries: 10,
            keep_params: vec!["q".into()],
            ..Default::default()
        }
    }

    #[test]
    fn cache_control_is_respected() {
        let c = cfg();
        let ttl = |h: &[(&[u8], &[u8])]| response_ttl_ms(&c, 200, h, Some(10));
        assert_eq!(ttl(&[]), Some(1000));
        assert_eq!(ttl(&[(b"Cache-Control", b"max-age=0")]), None);
        assert_eq!(
            ttl(&[(b"Cache-Control", b"public, max-age=60")]),
            Some(1000)
        );
        assert_eq!(
            ttl(&[(b"cache-control", b"max-age=60, s-maxage=0")]),
            None,
            "s-maxage wins"
        );
        assert_eq!(ttl(&[(b"Cache-Control", b"private")]), None);
        assert_eq!(ttl(&[(b"Cache-Control", b"no-store")]), None);
        assert_eq!(ttl(&[(b"Set-Cookie", b"a=b")]), None);
        assert_eq!(ttl(&[(b"Vary", b"Cookie")]), None);
        assert_eq!(ttl(&[(b"Vary", b"Accept-Encoding")]), Some(1000));
        assert_eq!(response_ttl_ms(&c, 500, &[], Some(1)), None);
        assert_eq!(response_ttl_ms(&c, 200, &[], None), None, "unknown length");
        assert_eq!(
            response_ttl_ms(&c, 200, &[], Some(2 << 20)),
            None,
            "too big"
        );
    }

    fn key_of(
        c: &SiteCache,
        method: &[u8],
        target: &str,
        fields: &[(&[u8], &[u8])],
        attack: bool,
    ) -> Option<(Key, Option<String>)> {
        let t = levee_http::target::normalize(target.as_bytes()).unwrap();
        c.key(
            &CacheRequest {
                method,
                host: "a.test",
                target: &t,
                https: false,
                fields,
                clearance_cookie: "levee_clearance",
            },
            attack,
        )
    }

    fn k(c: &SiteCache, target: &str) -> Key {
        key_of(c, b"GET", target, &[], false).unwrap().0
    }

    #[test]
    fn keys_drop_junk_only_when_asked_and_the_request_follows() {
        let c = SiteCache::new(&cfg());
        let kk = |t: &str, attack: bool| key_of(&c, b"GET", t, &[], attack).unwrap();
        assert_ne!(
            kk("/s?q=1&junk=2", false).0.bytes,
            kk("/s?q=1&junk=3", false).0.bytes
        );
        assert_eq!(
            kk("/s?q=1&junk=2", true).0.bytes,
            kk("/s?q=1&junk=3", true).0.bytes
        );
        let (key, fwd) = kk("/s?q=1&x=2", true);
        assert_eq!(key.bytes, b"http a.test a /s?q=1".to_vec());
        assert_eq!(
            fwd.as_deref(),
            Some("/s?q=1"),
            "what is forwarded is what is keyed"
        );
        assert_eq!(kk("/?s=<payload>", true).1.as_deref(), Some("/"));
        assert!(key_of(&c, b"POST", "/", &[], false).is_none());
        assert!(key_of(&c, b"GET", "/", &[(b"Authorization", b"x")], false).is_none());
        assert!(key_of(&c, b"GET", "/", &[(b"X-Api-Key", b"k")], false).is_none());
        assert!(key_of(&c, b"GET", "/", &[(b"cookie", b"session=1")], false).is_none());
        assert!(key_of(
            &c,
            b"GET",
            "/",
            &[(b"cookie", b"levee_clearance_x=1")],
            false
        )
        .is_none());
        assert!(key_of(&c, b"GET", "/", &[(b"cookie", b"levee_clearance=x")], false).is_some());
        let br = key_of(&c, b"GET", "/", &[(b"accept-encoding", b"br, gzip")], false).unwrap();
        let plain = key_of(&c, b"GET", "/", &[], false).unwrap();
        assert_ne!(br.0.bytes, plain.0.bytes, "codings are in the key");
    }

    #[test]
    fn the_scheme_is_in_the_key() {
        let c = SiteCache::new(&cfg());
        let t = levee_http::target::normalize(b"/").unwrap();
        let key = |https| {
            c.key(
                &CacheRequest {
                    method: b"GET",
                    host: "a.test",
                    target: &t,
                    https,
                    fields: &[],
                    clearance_cookie: "levee_clearance",
                },
                false,
            )
            .unwrap()
            .0
            .bytes
        };
        assert_ne!(key(true), key(false));
    }

    #[test]
    fn fresh_then_stale_then_gone_and_bounded() {
        let c = SiteCache::new(&cfg());
        let key = k(&c, "/");
        let h: [(&[u8], &[u8]); 1] = [(b"x", b"1")];
        c.store(&key, 200, h.into_iter(), Bytes::from_static(b"hi"), 1000, 0);
        assert!(matches!(c.lookup(&key, 999), Lookup::Fresh(_)));
        assert!(matches!(c.lookup(&key, 1000), Lookup::Stale(_)));
        assert!(matches!(c.lookup(&key, 61_000), Lookup::Miss));
        for i in 0..100 {
            let kk = k(&c, &format!("/{i}"));
            c.store(
                &kk,
                200,
                std::iter::empty(),
                Bytes::from_static(b"x"),
                1000,
                i,
            );
        }
        assert!(c.size().0 <= 10);
    }

    #[tokio::test]
    async fn misses_collapse_into_one_leader() {
        let c = SiteCache::new(&cfg());
        let key = k(&c, "/");
        let leader = match c.join(&key, Duration::from_secs(5)).await {
            Join::Leader(l) => l,
            Join::Filled => panic!("first is the leader"),
        };
        let c2 = Arc::clone(&c);
        let k2 = key.clone();
        let follower = tokio::spawn(async move {
            let t = std::time::Instant::now();
            let j = c2.join(&k2, Duration::from_secs(5)).await;
            (matches!(j, Join::Filled), t.elapsed())
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.store(
            &key,
            200,
            std::iter::empty(),
            Bytes::from_static(b"x"),
            1000,
            0,
        );
        drop(leader);
        let (filled, waited) = follower.await.unwrap();
        assert!(filled);
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }
}
