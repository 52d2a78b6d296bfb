//! One origin (its pool, admission, health) and a site's set of them.

use crate::admission::{Admission, Class, Grant};
use crate::clock::now_ms;
use crate::error::BuildError;
use crate::metrics::Metrics;
use bytes::BytesMut;
use levee_http::h1::{self, Parsed};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::{ProxyError, MAX_RESPONSE_HEAD};

/// A connection to an origin, plain or TLS.
pub(crate) enum UpIo {
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl UpIo {
    fn tcp(&self) -> &TcpStream {
        match self {
            UpIo::Tcp(t) => t,
            UpIo::Tls(t) => t.get_ref().0,
        }
    }
}

impl AsyncRead for UpIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpIo::Tcp(t) => Pin::new(t).poll_read(cx, buf),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for UpIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            UpIo::Tcp(t) => Pin::new(t).poll_write(cx, buf),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpIo::Tcp(t) => Pin::new(t).poll_flush(cx),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            UpIo::Tcp(t) => Pin::new(t).poll_shutdown(cx),
            UpIo::Tls(t) => Pin::new(t.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An origin connection and the bytes read from it but not yet used.
pub(crate) struct UpConn {
    pub io: UpIo,
    pub buf: BytesMut,
    pub(super) reused: bool,
}

impl UpConn {
    /// Still open and silent? (A pooled connection the origin closed, or that
    /// carries unexpected bytes, must not be reused.)
    fn is_reusable(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut b = [0u8; 1];
        let mut rb = ReadBuf::new(&mut b);
        matches!(self.io.tcp().poll_peek(&mut cx, &mut rb), Poll::Pending)
    }
}

/// Holds an origin concurrency slot until dropped.
pub(crate) struct OriginPermit {
    _grant: Grant,
    origin: Arc<Origin>,
}

impl Drop for OriginPermit {
    fn drop(&mut self) {
        self.origin.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A site's origins and how one is chosen.
#[derive(Debug)]
pub(crate) struct OriginSet {
    origins: Vec<Arc<Origin>>,
    balance: levee_config::Balance,
    rr: std::sync::atomic::AtomicUsize,
}

impl std::ops::Deref for OriginSet {
    type Target = [Arc<Origin>];
    fn deref(&self) -> &[Arc<Origin>] {
        &self.origins
    }
}

impl OriginSet {
    pub(crate) fn new(origins: Vec<Arc<Origin>>, balance: levee_config::Balance) -> OriginSet {
        OriginSet {
            origins,
            balance,
            rr: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Choose an origin: among those believed up (all of them if none is, so
    /// a site is never dark because of its health checks alone).
    pub(crate) fn pick(&self, now_ms: u64) -> Option<Arc<Origin>> {
        let n = self.origins.len();
        if n == 0 {
            return None;
        }
        let any_up = self.origins.iter().any(|o| o.available(now_ms));
        let eligible = |o: &Arc<Origin>| !any_up || o.available(now_ms);
        let start = self.rr.fetch_add(1, Ordering::Relaxed);
        let candidates = (0..n)
            .map(|i| &self.origins[(start + i) % n])
            .filter(|o| eligible(o));
        let chosen = match self.balance {
            levee_config::Balance::RoundRobin => candidates.into_iter().next(),
            levee_config::Balance::LeastOutstanding => candidates.min_by_key(|o| o.outstanding()),
        };
        chosen.map(Arc::clone)
    }

    /// Every origin is at its limit with a queue.
    pub(crate) fn saturated(&self) -> bool {
        !self.origins.is_empty()
            && self.origins.iter().all(|o| {
                let (inflight, waiting) = o.admission.load();
                waiting > 0 || inflight >= o.admission.limit()
            })
    }
}

/// One upstream server of a site.
pub(crate) struct Origin {
    pub address: String,
    key: String,
    addrs: Vec<SocketAddr>,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    idle: Mutex<Vec<UpConn>>,
    max_idle: usize,
    /// Concurrency limit, priority queue, adaptive limit.
    pub admission: Arc<Admission>,
    pub max_concurrent: u32,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    outstanding: AtomicU32,
    /// Result of active health checks (true when none are configured).
    pub healthy: AtomicBool,
    passive_fails: AtomicU32,
    passive_limit: u32,
    passive_cooldown_ms: u64,
    down_until_ms: AtomicU64,
    pub requests: AtomicU64,
}

impl std::fmt::Debug for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Origin")
            .field("address", &self.address)
            .finish()
    }
}

impl Origin {
    /// The identity of an origin's settings: equal keys may share pools across reloads.
    pub(crate) fn key_for(s: &levee_config::Site, o: &levee_config::Origin) -> String {
        format!(
            "{}|{}|{:?}|{:?}|{}|{}|{:?}|{:?}|{:?}|{}|{:?}|{:?}|{}",
            o.address,
            o.tls,
            o.server_name,
            o.ca_file,
            s.max_concurrent_per_origin,
            s.queue,
            s.queue_timeout,
            s.connect_timeout,
            s.response_timeout,
            s.max_idle_per_origin,
            s.health
                .as_ref()
                .map(|h| (&h.path, h.interval, h.timeout, h.rise, h.fall)),
            (s.passive_failures, s.passive_cooldown),
            s.defense.min_concurrency,
        )
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Resolve, set up TLS and start health checks.
    pub(crate) fn new(
        s: &levee_config::Site,
        o: &levee_config::Origin,
        key: String,
        kp: &str,
    ) -> Result<Arc<Origin>, BuildError> {
        let addrs: Vec<SocketAddr> = o
            .address
            .to_socket_addrs()
            .map_err(|e| BuildError::Invalid {
                path: format!("{kp}.address"),
                message: format!("cannot resolve {:?}: {e}", o.address),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(BuildError::Invalid {
                path: format!("{kp}.address"),
                message: format!("{:?} resolves to no address", o.address),
            });
        }
        let tls = if o.tls {
            let cfg = crate::tls::client_config(o.ca_file.as_deref(), &format!("{kp}.ca_file"))?;
            let host = o
                .server_name
                .clone()
                .or_else(|| levee_config::split_host_port(&o.address).map(|(h, _)| h.to_string()))
                .unwrap_or_default();
            let name = rustls::pki_types::ServerName::try_from(host.clone()).map_err(|_| {
                BuildError::Invalid {
                    path: format!("{kp}.server_name"),
                    message: format!("{host:?} is not a valid TLS server name"),
                }
            })?;
            Some((tokio_rustls::TlsConnector::from(cfg), name))
        } else {
            None
        };
        let origin = Arc::new(Origin {
            address: o.address.clone(),
            key,
            addrs,
            tls,
            idle: Mutex::new(Vec::new()),
            max_idle: s.max_idle_per_origin as usize,
            admission: Admission::new(
                s.max_concurrent_per_origin,
                s.defense.min_concurrency,
                s.queue,
                s.queue_timeout.as_duration(),
            ),
            max_concurrent: s.max_concurrent_per_origin,
            connect_timeout: s.connect_timeout.as_duration(),
            response_timeout: s.response_timeout.as_duration(),
            outstanding: AtomicU32::new(0),
            healthy: AtomicBool::new(true),
            passive_fails: AtomicU32::new(0),
            passive_limit: s.passive_failures.max(1),
            passive_cooldown_ms: s.passive_cooldown.as_duration().as_millis() as u64,
            down_until_ms: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        if let (Some(hc), Ok(rt)) = (&s.health, tokio::runtime::Handle::try_current()) {
            rt.spawn(health_loop(
                Arc::downgrade(&origin),
                hc.clone(),
                s.hosts.first().cloned().unwrap_or_default(),
            ));
        }
        Ok(origin)
    }

    /// Up by active checks and not in a passive cool-down.
    pub(crate) fn available(&self, now: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && now >= self.down_until_ms.load(Ordering::Relaxed)
    }

    pub(crate) fn outstanding(&self) -> u32 {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub(crate) fn idle_connections(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub(super) fn record_failure(&self) {
        let n = self.passive_fails.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.passive_limit {
            self.down_until_ms
                .store(now_ms() + self.passive_cooldown_ms, Ordering::Relaxed);
            self.passive_fails.store(0, Ordering::Relaxed);
        }
    }

    pub(super) fn record_success(&self) {
        if self.passive_fails.load(Ordering::Relaxed) != 0 {
            self.passive_fails.store(0, Ordering::Relaxed);
        }
    }

    /// Take a concurrency slot for a request of `class` (see [`crate::admission`]).
    pub(crate) async fn admit(
        self: &Arc<Self>,
        class: Class,
        attack: bool,
    ) -> Result<OriginPermit, ProxyError> {
        let grant = self
            .admission
            .acquire(class, attack)
            .await
            .map_err(|_| ProxyError::Busy)?;
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        Ok(OriginPermit {
            _grant: grant,
            origin: Arc::clone(self),
        })
    }

    /// A pooled connection. With `check`, it is first probed for having been
    /// closed by the origin (one extra syscall): done for requests with a
    /// body, which cannot be retried; bodiless requests are retried instead.
    pub(super) fn take_idle(&self, check: bool) -> Option<UpConn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(c) = idle.pop() {
            if !check || c.is_reusable() {
                return Some(c);
            }
        }
        None
    }

    /// Return a connection whose last response was read completely.
    pub(crate) fn put_idle(&self, mut c: UpConn) {
        if !c.buf.is_empty() {
            return;
        }
        c.reused = true;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.max_idle {
            idle.push(c);
        }
    }

    pub(super) async fn connect(&self, metrics: &Metrics) -> io::Result<UpConn> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in &self.addrs {
            metrics.origin_connects.fetch_add(1, Ordering::Relaxed);
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    let io = match &self.tls {
                        None => UpIo::Tcp(s),
                        Some((conn, name)) => {
                            let t = tokio::time::timeout(
                                self.connect_timeout,
                                conn.connect(name.clone(), s),
                            )
                            .await
                            .map_err(|_| {
                                io::Error::new(
                                    io::ErrorKind::TimedOut,
                                    "TLS handshake with origin timed out",
                                )
                            })??;
                            UpIo::Tls(Box::new(t))
                        }
                    };
                    return Ok(UpConn {
                        io,
                        buf: BytesMut::with_capacity(16 * 1024),
                        reused: false,
                    });
                }
                Ok(Err(e)) => last = e,
                Err(_) => {
                    last = io::Error::new(io::ErrorKind::TimedOut, "connect to origin timed out")
                }
            }
        }
        Err(last)
    }
}

async fn health_loop(origin: Weak<Origin>, hc: levee_config::Health, host: String) {
    let mut ok_run = 0u32;
    let mut fail_run = 0u32;
    let metrics = Metrics::default();
    loop {
        tokio::time::sleep(hc.interval.as_duration()).await;
        let Some(o) = origin.upgrade() else { return };
        let req = format!("GET {} HTTP/1.1\r\nhost: {host}\r\nuser-agent: levee-health\r\nconnection: close\r\n\r\n", hc.path);
        let probe = async {
            let mut c = o.connect(&metrics).await.ok()?;
            c.io.write_all(req.as_bytes()).await.ok()?;
            let mut buf = Vec::with_capacity(1024);
            loop {
                let mut tmp = [0u8; 1024];
                let n = c.io.read(&mut tmp).await.ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&tmp[..n]);
                match h1::parse_response(&buf, false, MAX_RESPONSE_HEAD) {
                    Ok(Parsed::Complete(h)) => return Some(h.status),
                    Ok(Parsed::Partial) => {}
                    Err(_) => return None,
                }
            }
        };
        let good = matches!(tokio::time::timeout(hc.timeout.as_duration(), probe).await, Ok(Some(s)) if (200..400).contains(&s));
        if good {
            ok_run += 1;
            fail_run = 0;
            if ok_run >= hc.rise {
                o.healthy.store(true, Ordering::Relaxed);
            }
        } else {
            fail_run += 1;
            ok_run = 0;
            if fail_run >= hc.fall {
                o.healthy.store(false, Ordering::Relaxed);
            }
        }
    }
}
