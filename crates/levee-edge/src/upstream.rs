//! Origins: keep-alive connection pools, admission (a concurrency cap with a
//! short bounded queue), active and passive health, and the HTTP/1.1
//! exchange with the origin that both client protocols share.

use crate::admission::{Admission, Class, Grant};
use crate::clock::now_ms;
use crate::error::BuildError;
use crate::metrics::{Metrics, Reason};
use bytes::{Bytes, BytesMut};
use levee_http::chunked;
use levee_http::h1::{self, Framing, Parsed, ResponseHead};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

const MAX_RESPONSE_HEAD: usize = 64 * 1024;

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
    reused: bool,
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

    fn record_failure(&self) {
        let n = self.passive_fails.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= self.passive_limit {
            self.down_until_ms
                .store(now_ms() + self.passive_cooldown_ms, Ordering::Relaxed);
            self.passive_fails.store(0, Ordering::Relaxed);
        }
    }

    fn record_success(&self) {
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
    fn take_idle(&self, check: bool) -> Option<UpConn> {
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

    async fn connect(&self, metrics: &Metrics) -> io::Result<UpConn> {
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

/// Why the client's request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooSlow,
    TooLarge,
    Malformed,
    Closed,
}

/// Why a request could not be proxied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyError {
    /// The origin's concurrency cap and queue are full (503).
    Busy,
    /// No origin could be reached (502).
    Unavailable,
    /// The origin did not answer in time (504).
    Timeout,
    /// The origin's response was malformed (502).
    BadResponse,
    /// The client's body failed.
    Client(BodyError),
}

impl ProxyError {
    pub(crate) fn status(self) -> u16 {
        match self {
            ProxyError::Busy => 503,
            ProxyError::Unavailable | ProxyError::BadResponse => 502,
            ProxyError::Timeout => 504,
            ProxyError::Client(BodyError::TooSlow) => 408,
            ProxyError::Client(BodyError::TooLarge) => 413,
            ProxyError::Client(_) => 400,
        }
    }
    pub(crate) fn reason(self) -> Reason {
        match self {
            ProxyError::Busy => Reason::OriginBusy,
            ProxyError::Unavailable => Reason::OriginUnavailable,
            ProxyError::Timeout => Reason::OriginTimeout,
            ProxyError::BadResponse => Reason::BadOriginResponse,
            ProxyError::Client(BodyError::TooSlow) => Reason::BodyTooSlow,
            ProxyError::Client(BodyError::TooLarge) => Reason::BodyTooLarge,
            ProxyError::Client(_) => Reason::BadChunkedBody,
        }
    }
}

/// Where a request body comes from (an HTTP/1 connection or an HTTP/2 stream).
pub(crate) trait BodySource {
    /// The next piece of the body, `None` at its end.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>> + Send;
}

/// A body whose first part (or all of it) was read before the origin was asked.
pub(crate) struct Buffered<'b, B> {
    chunks: std::collections::VecDeque<Bytes>,
    rest: Option<&'b mut B>,
}

impl<B: BodySource + Send> BodySource for Buffered<'_, B> {
    #[allow(clippy::manual_async_fn)] // the trait needs the `Send` bound spelled out
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>> + Send {
        async move {
            if let Some(c) = self.chunks.pop_front() {
                return Ok(Some(c));
            }
            match self.rest.as_mut() {
                Some(r) => r.next_chunk().await,
                None => Ok(None),
            }
        }
    }
}

/// Read up to `limit` bytes of the body before contacting the origin. A body
/// that ends within the limit is sent with its exact length; a longer one
/// keeps its framing and streams on.
pub(crate) async fn prebuffer<'b, B: BodySource>(
    src: &'b mut B,
    framing: SendFraming,
    limit: usize,
) -> Result<(Buffered<'b, B>, SendFraming), BodyError> {
    let mut chunks = std::collections::VecDeque::new();
    if framing == SendFraming::None {
        return Ok((Buffered { chunks, rest: None }, framing));
    }
    let mut total = 0usize;
    while total < limit {
        match src.next_chunk().await? {
            Some(c) => {
                total += c.len();
                if !c.is_empty() {
                    chunks.push_back(c);
                }
            }
            None => {
                let f = if total == 0 {
                    SendFraming::None
                } else {
                    SendFraming::Length(total as u64)
                };
                return Ok((Buffered { chunks, rest: None }, f));
            }
        }
    }
    Ok((
        Buffered {
            chunks,
            rest: Some(src),
        },
        framing,
    ))
}

/// How the edge frames the body it sends to the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendFraming {
    None,
    Length(u64),
    Chunked,
}

/// A response head received from an origin, with the connection to read its body from.
pub(crate) struct Exchange {
    pub origin: Arc<Origin>,
    pub conn: UpConn,
    pub head: ResponseHead,
    pub head_bytes: Bytes,
    pub body: BodyReader,
    /// When the origin was asked (for origin-time in the access log).
    pub started: Instant,
    /// The origin admission slot; given back as soon as the whole response
    /// is in hand (`response_complete`), not when a slow client has read it.
    permit: Option<OriginPermit>,
}

impl Exchange {
    /// Response fields as `(name, value)` byte slices.
    pub(crate) fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone {
        self.head
            .headers
            .iter()
            .map(|(n, v)| (&self.head_bytes[n.clone()], &self.head_bytes[v.clone()]))
    }

    /// The origin has sent the whole response: give its admission slot back
    /// now, so that a client reading slowly does not hold the origin's
    /// capacity (slow read). The connection itself goes back with `finish`.
    pub(crate) fn response_complete(&mut self) {
        if self.body.is_done() {
            self.permit = None;
        }
    }

    /// Give the origin admission slot back now (a WebSocket tunnel is not
    /// a request in flight).
    pub(crate) fn release_slot(&mut self) {
        self.permit = None;
    }

    /// After the body was read to its end: return the connection to the pool if it can be reused.
    pub(crate) fn finish(self) {
        if self.head.keep_alive && self.body.is_done() && self.conn.buf.is_empty() {
            self.origin.record_success();
            self.origin.put_idle(self.conn);
        }
    }
}

/// Send a request to one of `site`'s origins and read its response head.
/// Idempotent requests without a body (GET, HEAD, OPTIONS) are retried on a
/// fresh connection when a pooled connection turns out to be dead, and on
/// another origin when one cannot be reached; others never run twice.
pub(crate) async fn forward<B: BodySource>(
    origins: &OriginSet,
    head: &[u8],
    framing: SendFraming,
    body: &mut B,
    method: &[u8],
    metrics: &Metrics,
    prio: (Class, bool),
) -> Result<Exchange, ProxyError> {
    let head_request = method == b"HEAD";
    let retryable = framing == SendFraming::None && matches!(method, b"GET" | b"HEAD" | b"OPTIONS");
    // A request without a body that failed before the origin sent a byte is
    // tried on another origin (at most three in all).
    let attempts = origins.len().clamp(1, 3);
    let mut tried: Vec<usize> = Vec::new();
    let mut last = ProxyError::Unavailable;
    for attempt in 0..attempts {
        let mut origin = origins.pick(now_ms()).ok_or(ProxyError::Unavailable)?;
        for _ in 0..origins.len() {
            if !tried.contains(&(Arc::as_ptr(&origin) as usize)) {
                break;
            }
            origin = origins.pick(now_ms()).ok_or(ProxyError::Unavailable)?;
        }
        tried.push(Arc::as_ptr(&origin) as usize);
        match forward_to(
            origin,
            head,
            framing,
            body,
            (head_request, retryable),
            metrics,
            prio,
        )
        .await
        {
            Err(ProxyError::Unavailable) if retryable && attempt + 1 < attempts => {
                metrics.origin_retries.fetch_add(1, Ordering::Relaxed);
                last = ProxyError::Unavailable;
            }
            other => return other,
        }
    }
    Err(last)
}

async fn forward_to<B: BodySource>(
    origin: Arc<Origin>,
    head: &[u8],
    framing: SendFraming,
    body: &mut B,
    (head_request, retryable): (bool, bool),
    metrics: &Metrics,
    prio: (Class, bool),
) -> Result<Exchange, ProxyError> {
    let permit = origin.admit(prio.0, prio.1).await?;
    metrics.origin_requests.fetch_add(1, Ordering::Relaxed);
    origin.requests.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let mut pooled = origin.take_idle(framing != SendFraming::None);
    loop {
        let reused = pooled.is_some();
        let mut conn = match pooled.take() {
            Some(c) => c,
            None => match origin.connect(metrics).await {
                Ok(c) => c,
                Err(e) => {
                    origin.record_failure();
                    return Err(if e.kind() == io::ErrorKind::TimedOut {
                        ProxyError::Timeout
                    } else {
                        ProxyError::Unavailable
                    });
                }
            },
        };
        match exchange(&origin, &mut conn, head, framing, body, head_request).await {
            Ok(rh) => {
                origin
                    .admission
                    .record_latency(started.elapsed().as_micros() as u64);
                let head_bytes = conn.buf.split_to(rh.len).freeze();
                let body = BodyReader::new(rh.framing);
                return Ok(Exchange {
                    origin,
                    conn,
                    head: rh,
                    head_bytes,
                    body,
                    started,
                    permit: Some(permit),
                });
            }
            Err(Attempt::Retryable) if reused && retryable => {
                metrics.origin_retries.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(Attempt::Retryable) => {
                origin.record_failure();
                return Err(ProxyError::Unavailable);
            }
            Err(Attempt::Failed(e)) => {
                if matches!(
                    e,
                    ProxyError::Timeout | ProxyError::BadResponse | ProxyError::Unavailable
                ) {
                    origin.record_failure();
                }
                return Err(e);
            }
        }
    }
}

enum Attempt {
    /// The connection failed before any response byte: safe to retry a bodiless request.
    Retryable,
    Failed(ProxyError),
}

async fn exchange<B: BodySource>(
    origin: &Origin,
    conn: &mut UpConn,
    head: &[u8],
    framing: SendFraming,
    body: &mut B,
    head_request: bool,
) -> Result<ResponseHead, Attempt> {
    // Writes to the origin have the response deadline too: an origin that
    // stops reading does not hold the client, the slot and the connection.
    let deadline = tokio::time::Instant::now() + origin.response_timeout;
    let write = |r: Result<io::Result<()>, tokio::time::error::Elapsed>| match r {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "origin not reading",
        )),
    };
    if write(tokio::time::timeout_at(deadline, conn.io.write_all(head)).await).is_err() {
        return Err(Attempt::Retryable);
    }
    if framing != SendFraming::None {
        let mut sent = 0u64;
        loop {
            let chunk = body
                .next_chunk()
                .await
                .map_err(|e| Attempt::Failed(ProxyError::Client(e)))?;
            let w = match (&chunk, framing) {
                (Some(c), SendFraming::Chunked) if !c.is_empty() => {
                    let size = format!("{:x}\r\n", c.len());
                    write(
                        tokio::time::timeout_at(deadline, async {
                            conn.io.write_all(size.as_bytes()).await?;
                            conn.io.write_all(c).await?;
                            conn.io.write_all(b"\r\n").await
                        })
                        .await,
                    )
                }
                (Some(c), _) => {
                    sent += c.len() as u64;
                    write(tokio::time::timeout_at(deadline, conn.io.write_all(c)).await)
                }
                (None, SendFraming::Chunked) => {
                    write(tokio::time::timeout_at(deadline, conn.io.write_all(b"0\r\n\r\n")).await)
                }
                (None, _) => Ok(()),
            };
            if let Err(e) = w {
                return Err(Attempt::Failed(if e.kind() == io::ErrorKind::TimedOut {
                    ProxyError::Timeout
                } else {
                    ProxyError::Unavailable
                }));
            }
            if chunk.is_none() {
                break;
            }
            if let SendFraming::Length(n) = framing {
                if sent >= n {
                    break;
                }
            }
        }
    }
    let deadline = tokio::time::Instant::now() + origin.response_timeout;
    let mut got_bytes = false;
    loop {
        match h1::parse_response(&conn.buf, head_request, MAX_RESPONSE_HEAD) {
            Ok(Parsed::Complete(rh)) => {
                if (100..200).contains(&rh.status) && rh.status != 101 {
                    // Interim response: drop it, read the final one.
                    let _ = conn.buf.split_to(rh.len);
                    continue;
                }
                return Ok(rh);
            }
            Ok(Parsed::Partial) => {}
            Err(_) => return Err(Attempt::Failed(ProxyError::BadResponse)),
        }
        conn.buf.reserve(16 * 1024);
        match tokio::time::timeout_at(deadline, conn.io.read_buf(&mut conn.buf)).await {
            Err(_) => return Err(Attempt::Failed(ProxyError::Timeout)),
            Ok(Ok(0)) | Ok(Err(_)) if !got_bytes && conn.buf.is_empty() => {
                return Err(if conn.reused {
                    Attempt::Retryable
                } else {
                    Attempt::Failed(ProxyError::Unavailable)
                })
            }
            Ok(Ok(0)) | Ok(Err(_)) => return Err(Attempt::Failed(ProxyError::BadResponse)),
            Ok(Ok(_)) => got_bytes = true,
        }
    }
}

/// Reads a response body from an origin connection, yielding decoded data.
pub(crate) enum BodyReader {
    Done,
    Length(u64),
    Chunked(chunked::Decoder),
    Close,
}

impl BodyReader {
    fn new(f: Framing) -> Self {
        match f {
            Framing::None => BodyReader::Done,
            Framing::Length(n) => BodyReader::Length(n),
            Framing::Chunked => BodyReader::Chunked(chunked::Decoder::new()),
            Framing::Close => BodyReader::Close,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, BodyReader::Done)
    }

    /// The next piece of the body, or `None` at its end.
    pub(crate) async fn next(&mut self, conn: &mut UpConn) -> io::Result<Option<Bytes>> {
        loop {
            match self {
                BodyReader::Done => return Ok(None),
                BodyReader::Length(left) => {
                    if !conn.buf.is_empty() {
                        let n = (*left).min(conn.buf.len() as u64) as usize;
                        *left -= n as u64;
                        let data = conn.buf.split_to(n).freeze();
                        if *left == 0 {
                            *self = BodyReader::Done;
                        }
                        return Ok(Some(data));
                    }
                }
                BodyReader::Chunked(dec) => {
                    while !conn.buf.is_empty() {
                        let step = dec
                            .decode(&conn.buf)
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                        let consumed = conn.buf.split_to(step.consumed).freeze();
                        if dec.is_done() {
                            *self = BodyReader::Done;
                            return Ok(step.data.map(|r| consumed.slice(r)));
                        }
                        if let Some(r) = step.data {
                            return Ok(Some(consumed.slice(r)));
                        }
                        if step.consumed == 0 {
                            break;
                        }
                    }
                }
                BodyReader::Close => {
                    if !conn.buf.is_empty() {
                        let n = conn.buf.len();
                        return Ok(Some(conn.buf.split_to(n).freeze()));
                    }
                }
            }
            conn.buf.reserve(32 * 1024);
            let n = conn.io.read_buf(&mut conn.buf).await?;
            if n == 0 {
                return match self {
                    BodyReader::Close => {
                        *self = BodyReader::Done;
                        Ok(None)
                    }
                    _ => Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "origin closed mid-body",
                    )),
                };
            }
        }
    }
}
