//! HTTP/2 client connections (TLS with ALPN `h2`, or h2c with prior knowledge).
//!
//! Every limit is set explicitly on the `h2` builder. In front of the library
//! sits a frame meter ([`levee_http::h2meter`]) that counts PING, SETTINGS,
//! RST_STREAM, empty DATA, WINDOW_UPDATE and CONTINUATION frames. Streams
//! whose origin work is still running count against `max_concurrent_streams`
//! even after the client reset them (Rapid Reset, CVE-2023-44487); new
//! streams beyond that are refused, and too many refusals, like any flood,
//! end the connection with GOAWAY(ENHANCE_YOUR_CALM) and mark the client.

use crate::accesslog::LogLine;
use crate::clock::{now_ms, unix_ms};
use crate::h1::{RateDeadline, DRILL_PATH};
use crate::listener::Peer;
use crate::metrics::Reason;
use crate::proxy::{self, UpstreamRequest};
use crate::state::State;
use crate::upstream::{self, BodyError, BodySource, ProxyError, SendFraming};
use crate::{Shared, Verdict};
use bytes::Bytes;
use h2::server::SendResponse;
use h2::RecvStream;
use levee_http::h1::{is_hop_by_hop, Framing};
use levee_http::h2meter::{Flood, FrameMeter};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::timeout_at;

/// Set by the meter when a flood is seen; the connection task acts on it.
#[derive(Default)]
struct FloodFlag {
    flood: AtomicU8,
    notify: Notify,
    /// The client closed its side (EOF): an ordinary end, not a GOAWAY.
    eof: std::sync::atomic::AtomicBool,
}

const NO_FLOOD: u8 = u8::MAX;

/// The client stream, metered: every byte handed to `h2` passes the meter.
struct Metered<S> {
    inner: S,
    prefix: Bytes,
    meter: FrameMeter,
    flag: Arc<FloodFlag>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.meter.tripped().is_some() {
            // Stop feeding a flooding client's frames to the library; the
            // connection task sends GOAWAY and closes.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        if !me.prefix.is_empty() {
            let n = me.prefix.len().min(buf.remaining());
            buf.put_slice(&me.prefix.split_to(n));
        } else {
            match Pin::new(&mut me.inner).poll_read(cx, buf) {
                Poll::Ready(Ok(())) => {}
                other => return other,
            }
        }
        let new = &buf.filled()[before..];
        if new.is_empty() {
            me.flag.eof.store(true, Ordering::Relaxed);
        }
        if let Err(f) = me.meter.feed(new, now_ms()) {
            // Take the bytes back: the library never sees the flood, and the
            // connection task answers it with GOAWAY(ENHANCE_YOUR_CALM).
            buf.set_filled(before);
            me.flag.flood.store(f as u8, Ordering::Release);
            me.flag.notify.notify_one();
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Holds a place among the connection's streams with origin work in flight.
struct InFlight(Arc<AtomicU32>);
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn flood_from(v: u8) -> Option<Flood> {
    Flood::ALL.iter().copied().find(|f| *f as u8 == v)
}

/// Serve an HTTP/2 connection; `prefix` holds bytes already read (the h2c preface).
pub async fn serve<S>(io: S, prefix: Bytes, peer: Peer, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = shared.state.load_full();
    let h = &state.cfg.http2;
    let limits = &state.cfg.limits;
    let flag = Arc::new(FloodFlag {
        flood: AtomicU8::new(NO_FLOOD),
        notify: Notify::new(),
        eof: std::sync::atomic::AtomicBool::new(false),
    });
    let metered = Metered {
        inner: io,
        prefix,
        meter: FrameMeter::new(state.flood, now_ms()),
        flag: Arc::clone(&flag),
    };
    // Under attack, fewer streams per connection (a mode knob).
    let max_streams = if shared.tightened.load(Ordering::Relaxed) {
        h.max_concurrent_streams.min(32)
    } else {
        h.max_concurrent_streams
    };
    let mut b = h2::server::Builder::new();
    b.max_concurrent_streams(max_streams)
        .max_header_list_size(h.max_header_list_size.0 as u32)
        .max_frame_size(h.max_frame_size.0 as u32)
        .initial_window_size(h.initial_stream_window.0 as u32)
        .initial_connection_window_size(h.initial_connection_window.0 as u32)
        .max_send_buffer_size(h.max_send_buffer.0 as usize)
        .max_pending_accept_reset_streams(h.max_pending_accept_reset_streams as usize)
        .max_local_error_reset_streams(Some(h.max_local_error_reset_streams as usize))
        .max_concurrent_reset_streams(h.max_concurrent_reset_streams as usize)
        .reset_stream_duration(Duration::from_secs(5));
    let hs = tokio::time::timeout(
        limits.header_timeout.as_duration(),
        b.handshake::<_, Bytes>(metered),
    )
    .await;
    let mut conn = match hs {
        Ok(Ok(c)) => c,
        Ok(Err(_)) => {
            shared.refuse_connection(
                peer.ip,
                Reason::H2ProtocolError,
                peer.tls.as_ref().map(|t| t.version),
                "h2",
            );
            return;
        }
        Err(_) => {
            shared.refuse_connection(
                peer.ip,
                Reason::HeaderTimeout,
                peer.tls.as_ref().map(|t| t.version),
                "h2",
            );
            return;
        }
    };
    let in_flight = Arc::new(AtomicU32::new(0));
    let window = h.flood_window.as_duration();
    let mut refused = 0u32;
    let mut refused_since = Instant::now();
    let idle = limits.idle_timeout.as_duration();
    let mut last_active = tokio::time::Instant::now();
    let mut shutdown = shared.shutdown.clone();
    let mut draining = *shutdown.borrow();
    if draining {
        conn.graceful_shutdown();
    }
    let mut flood: Option<Flood> = None;
    loop {
        let idle_at = last_active + idle;
        tokio::select! {
            biased;
            _ = flag.notify.notified() => {
                flood = flood_from(flag.flood.load(Ordering::Acquire));
                if flood.is_some() { break; }
            }
            acc = conn.accept() => match acc {
                None => {
                    // Neither we nor the client ended it: the library sent GOAWAY
                    // (its own Rapid Reset / local-reset guards).
                    if !draining && !flag.eof.load(Ordering::Relaxed) {
                        shared.metrics.defend(Reason::H2Goaway);
                        shared.mark(peer.ip, Reason::H2Goaway.label());
                    }
                    break;
                }
                Some(Err(e)) => {
                    if e.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) || e.is_go_away() {
                        // The library's own reset guards fired.
                        shared.metrics.defend(Reason::H2Goaway);
                        shared.mark(peer.ip, Reason::H2ProtocolError.label());
                    }
                    shared.metrics.defend(Reason::H2ProtocolError);
                    break;
                }
                Some(Ok((req, mut respond))) => {
                    last_active = tokio::time::Instant::now();
                    if in_flight.load(Ordering::Acquire) >= max_streams {
                        shared.metrics.defend(Reason::H2RefusedStream);
                        respond.send_reset(h2::Reason::REFUSED_STREAM);
                        if refused_since.elapsed() >= window {
                            refused = 0;
                            refused_since = Instant::now();
                        }
                        refused += 1;
                        if refused > h.max_refused_streams {
                            flood = Some(Flood::Rst);
                            break;
                        }
                        continue;
                    }
                    in_flight.fetch_add(1, Ordering::AcqRel);
                    let guard = InFlight(Arc::clone(&in_flight));
                    tokio::spawn(stream(req, respond, peer.clone(), Arc::clone(&shared), Arc::clone(&state), guard));
                }
            },
            _ = shutdown.changed(), if !draining => {
                conn.graceful_shutdown();
                draining = true;
            }
            _ = tokio::time::sleep_until(idle_at), if !draining && in_flight.load(Ordering::Acquire) == 0 => {
                shared.metrics.defend(Reason::IdleTimeout);
                conn.graceful_shutdown();
                draining = true;
            }
        }
    }
    if let Some(f) = flood {
        shared.metrics.defend(Reason::H2Goaway);
        shared.mark(peer.ip, f.label());
        conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
        // Drive the connection until the GOAWAY is written, briefly.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(r) = conn.accept().await {
                if r.is_err() {
                    break;
                }
            }
        })
        .await;
        let proto = if peer.tls.is_some() { "h2" } else { "h2c" };
        shared.refuse_connection(
            peer.ip,
            Reason::H2(f),
            peer.tls.as_ref().map(|t| t.version),
            proto,
        );
    }
}

/// A request body on an HTTP/2 stream.
struct H2Body {
    body: RecvStream,
    received: u64,
    max: u64,
    pace: RateDeadline,
}

impl H2Body {
    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        let d = timeout_at(self.pace.at(self.received, 1), self.body.data()).await;
        match d {
            Err(_) => Err(BodyError::TooSlow),
            Ok(None) => Ok(None),
            Ok(Some(Err(_))) => Err(BodyError::Closed),
            Ok(Some(Ok(data))) => {
                let _ = self.body.flow_control().release_capacity(data.len());
                self.received += data.len() as u64;
                if self.received > self.max {
                    return Err(BodyError::TooLarge);
                }
                Ok(Some(data))
            }
        }
    }
}

impl BodySource for H2Body {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>> + Send {
        self.next()
    }
}

fn simple(
    respond: &mut SendResponse<Bytes>,
    status: u16,
    body: &str,
    retry_after: Option<u32>,
) -> u64 {
    let mut b = http::Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "no-store");
    if let Some(r) = retry_after {
        b = b.header("retry-after", r);
    }
    let Ok(resp) = b.body(()) else { return 0 };
    if let Ok(mut s) = respond.send_response(resp, body.is_empty()) {
        if !body.is_empty() {
            let _ = s.send_data(Bytes::copy_from_slice(body.as_bytes()), true);
        }
    }
    body.len() as u64
}

/// Connection-specific fields that HTTP/2 forbids (RFC 9113 §8.2.2).
fn h2_forbidden(name: &[u8]) -> bool {
    is_hop_by_hop(name) && !name.eq_ignore_ascii_case(b"content-length")
}

async fn stream(
    req: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    peer: Peer,
    shared: Arc<Shared>,
    state: Arc<State>,
    _in_flight: InFlight,
) {
    let started = Instant::now();
    shared.metrics.requests_h2.fetch_add(1, Ordering::Relaxed);
    let limits = &state.cfg.limits;
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_string();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.as_str().to_string());
    let host: Vec<u8> = match parts.uri.authority() {
        Some(a) => a.as_str().as_bytes().to_vec(),
        None => parts
            .headers
            .get(http::header::HOST)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default(),
    };
    let xff = if peer.trusted {
        parts.headers.get("x-forwarded-for").map(|v| v.as_bytes())
    } else {
        None
    };
    let client = proxy::client_ip(peer.ip, xff, &state.cfg.trust);
    let proto = if peer.tls.is_some() { "h2" } else { "h2c" };
    let log = |site: &str,
               status: u16,
               verdict: Verdict,
               reason: &'static str,
               bytes: (u64, u64),
               origin_us: Option<u64>,
               rid: String| {
        shared.metrics.status(status);
        shared
            .metrics
            .bytes_in
            .fetch_add(bytes.0, Ordering::Relaxed);
        shared
            .metrics
            .bytes_out
            .fetch_add(bytes.1, Ordering::Relaxed);
        if shared.log.enabled() {
            shared.log.log(&LogLine {
                ts_ms: unix_ms(),
                client,
                site,
                method: &method,
                path: &path,
                status,
                bytes_in: bytes.0,
                bytes_out: bytes.1,
                duration_us: started.elapsed().as_micros() as u64,
                origin_us,
                verdict,
                reason,
                tls: peer.tls.as_ref().map(|t| t.version),
                ja4: peer.tls.as_ref().and_then(|t| t.ja4.as_deref()),
                proto,
                request_id: &rid,
            });
        }
    };
    let refuse = |respond: &mut SendResponse<Bytes>,
                  status: u16,
                  reason: Reason,
                  site: &str,
                  retry: Option<u32>| {
        shared.metrics.defend(reason);
        let n = simple(
            respond,
            status,
            &proxy::error_text(status, reason.label()),
            retry,
        );
        let verdict = if status == 503 {
            Verdict::Shed
        } else {
            Verdict::Block
        };
        log(
            site,
            status,
            verdict,
            reason.label(),
            (0, n),
            None,
            String::new(),
        );
    };
    if parts.method == http::Method::CONNECT || parts.method == http::Method::TRACE {
        return refuse(
            &mut respond,
            405,
            Reason::Http(levee_http::h1::Reject::MethodNotAllowed),
            "",
            None,
        );
    }
    if path.len() > limits.max_uri_bytes.0 as usize {
        return refuse(
            &mut respond,
            414,
            Reason::Http(levee_http::h1::Reject::UriTooLong),
            "",
            None,
        );
    }
    if path.as_bytes() == DRILL_PATH {
        let (status, text) = match &state.cfg.drill.token {
            Some(t) => (200, format!("{t}\n")),
            None => (404, "no drill token configured\n".to_string()),
        };
        let n = simple(&mut respond, status, &text, None);
        return log("", status, Verdict::Allow, "", (0, n), None, String::new());
    }
    let Some(site) = state.site_for_host(&host) else {
        return refuse(&mut respond, 421, Reason::UnknownHost, "", None);
    };
    if let Some(sni) = peer.tls.as_ref().and_then(|t| t.sni.as_deref()) {
        if !state
            .site_for_host(sni.as_bytes())
            .is_some_and(|s| Arc::ptr_eq(s, site))
        {
            return refuse(&mut respond, 421, Reason::MisdirectedSni, &site.name, None);
        }
    }
    site.requests.fetch_add(1, Ordering::Relaxed);
    let names = || {
        levee_detect::features::header_order_label(
            parts.headers.keys().map(|n| n.as_str().as_bytes()),
        )
    };
    // The gate's view of the request also gives the cache its cookies and Authorization.
    let (pass, cookies, authorized) = {
        let find = |name: http::header::HeaderName| parts.headers.get(name).map(|v| v.as_bytes());
        let guarded = site.challenge.mode != levee_config::ChallengeMode::Off
            || site.defense.mode() != levee_detect::Mode::Normal;
        let view = crate::gate::View {
            req: crate::challenge::Req {
                authorization: find(http::header::AUTHORIZATION),
                marked: guarded && shared.is_marked(client),
                method: parts.method.as_str().as_bytes(),
                target: path.as_bytes(),
                accept: find(http::header::ACCEPT),
                cookies: parts
                    .headers
                    .get_all(http::header::COOKIE)
                    .iter()
                    .map(|v| v.as_bytes())
                    .collect(),
                user_agent: find(http::header::USER_AGENT).unwrap_or(b""),
                client,
                https: peer.tls.is_some(),
            },
            header_order: levee_detect::features::header_order_hash(
                parts.headers.keys().map(|n| n.as_str().as_bytes()),
            ),
            header_names: &names,
            ja4: peer.tls.as_ref().and_then(|t| t.ja4.as_deref()),
            h2: None,
        };
        match crate::gate::check(&shared, &state, site, &view) {
            Ok(p) => (p, view.req.cookies, view.req.authorization.is_some()),
            Err(ans) => {
                if let Some(d) = ans.delay {
                    tokio::time::sleep(d).await;
                }
                let mut b = http::Response::builder()
                    .status(ans.status)
                    .header("content-type", ans.content_type)
                    .header("cache-control", "no-store");
                for (n, v) in &ans.headers {
                    b = b.header(*n, v.as_str());
                }
                let n = ans.body.len() as u64;
                if let Ok(resp) = b.body(()) {
                    let head_only = parts.method == http::Method::HEAD;
                    if let Ok(mut s) = respond.send_response(resp, head_only) {
                        if !head_only {
                            let _ = s.send_data(Bytes::from(ans.body), true);
                        }
                    }
                }
                return log(
                    &site.name,
                    ans.status,
                    ans.verdict,
                    ans.reason,
                    (0, n),
                    None,
                    String::new(),
                );
            }
        }
    };
    // Micro-cache (GET and HEAD without a body): fresh copies answer here,
    // concurrent misses wait for one fetch.
    let mut probe = crate::cache::Probe::default();
    if let (Some(c), true) = (&site.cache, body.is_end_stream()) {
        if let Some(k) = c.key(
            method.as_bytes(),
            &host,
            path.as_bytes(),
            authorized,
            &cookies,
            pass.attack(),
        ) {
            probe = crate::cache::Probe::run(site, c, k).await;
        }
    }
    let head_only = parts.method == http::Method::HEAD;
    if let Some((e, label)) = probe.answer.take() {
        let n = send_cached(&mut respond, &e, label, head_only, limits).await;
        return log(
            &site.name,
            e.status,
            Verdict::Allow,
            cache_reason(label),
            (0, n),
            None,
            String::new(),
        );
    }
    let max_body = limits.max_body_bytes.0;
    let declared: Option<u64> = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > max_body) {
        return refuse(&mut respond, 413, Reason::BodyTooLarge, &site.name, None);
    }
    let framing = if body.is_end_stream() {
        SendFraming::None
    } else {
        match declared {
            Some(n) => SendFraming::Length(n),
            None => SendFraming::Chunked,
        }
    };
    let request_id = proxy::request_id();
    let mut src = H2Body {
        body,
        received: 0,
        max: max_body,
        pace: RateDeadline::new(limits.body_grace.as_duration(), limits.min_body_rate.0),
    };
    let (mut buffered, framing) =
        match upstream::prebuffer(&mut src, framing, limits.request_buffer.0 as usize).await {
            Ok(x) => x,
            Err(e) => {
                let e = ProxyError::Client(e);
                return refuse(&mut respond, e.status(), e.reason(), &site.name, None);
            }
        };
    let fields: Vec<(&[u8], &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
        .collect();
    let mut head = Vec::with_capacity(1024);
    proxy::write_upstream_head(
        &mut head,
        &UpstreamRequest {
            method: method.as_bytes(),
            path: path.as_bytes(),
            host: &host,
            client,
            xff_in: xff,
            peer: peer.ip,
            https: peer.tls.is_some(),
            request_id: &request_id,
            framing,
            websocket: false,
        },
        fields.iter().copied(),
    );
    let is_head = parts.method == http::Method::HEAD;
    let result = probe
        .bounded(upstream::forward(
            site,
            &head,
            framing,
            &mut buffered,
            is_head,
            &shared.metrics,
            (pass.class, pass.attack()),
        ))
        .await;
    drop(buffered);
    let mut ex = match result {
        Ok(ex) => ex,
        Err(e) => {
            if matches!(
                e,
                ProxyError::Unavailable | ProxyError::Timeout | ProxyError::BadResponse
            ) {
                site.defense.error();
            }
            if let Some((entry, label)) = probe.fallback() {
                let n = send_cached(&mut respond, &entry, label, head_only, limits).await;
                return log(
                    &site.name,
                    entry.status,
                    Verdict::Allow,
                    cache_reason(label),
                    (0, n),
                    None,
                    String::new(),
                );
            }
            let retry = (e == ProxyError::Busy).then_some(1);
            return refuse(&mut respond, e.status(), e.reason(), &site.name, retry);
        }
    };
    let bytes_in = src.received;
    let origin_us = ex.started.elapsed().as_micros() as u64;
    let status = ex.head.status;
    if status >= 500 {
        site.defense.error();
    }
    // A cacheable response is read whole, stored, and answered from the cache.
    match probe.fill(&mut ex, head_only).await {
        None => {}
        Some(None) => {
            return refuse(
                &mut respond,
                502,
                Reason::BadOriginResponse,
                &site.name,
                None,
            );
        }
        Some(Some(entry)) => {
            ex.finish();
            drop(probe);
            let n = send_cached(&mut respond, &entry, "MISS", false, limits).await;
            return log(
                &site.name,
                status,
                Verdict::Allow,
                "",
                (bytes_in, n),
                Some(origin_us),
                request_id,
            );
        }
    }
    let mut rb = http::Response::builder().status(status);
    let tokens = proxy::connection_tokens(ex.headers());
    for (n, v) in ex.headers() {
        let pass_len = n.eq_ignore_ascii_case(b"content-length")
            && matches!(ex.head.framing, Framing::None | Framing::Length(_));
        if (h2_forbidden(n) || n.eq_ignore_ascii_case(b"content-length")) && !pass_len {
            continue;
        }
        if tokens.iter().any(|t| t.eq_ignore_ascii_case(n)) {
            continue;
        }
        rb = rb.header(n, v);
    }
    let Ok(resp) = rb.body(()) else {
        return refuse(
            &mut respond,
            502,
            Reason::BadOriginResponse,
            &site.name,
            None,
        );
    };
    let end = ex.body.is_done();
    let mut send = match respond.send_response(resp, end) {
        Ok(s) => s,
        Err(_) => {
            return log(
                &site.name,
                status,
                Verdict::Allow,
                "",
                (bytes_in, 0),
                Some(origin_us),
                request_id,
            )
        }
    };
    let pace = RateDeadline::new(limits.send_grace.as_duration(), limits.min_send_rate.0);
    let mut sent = 0u64;
    let mut reason = "";
    let mut ok = true;
    while !ex.body.is_done() {
        let data = match ex.body.next(&mut ex.conn).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                let _ = send.send_data(Bytes::new(), true);
                break;
            }
            Err(_) => {
                shared.metrics.defend(Reason::BadOriginResponse);
                reason = Reason::BadOriginResponse.label();
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                ok = false;
                break;
            }
        };
        let last = ex.body.is_done();
        // The whole response is in hand: free the origin's slot before a
        // slow reader gets it.
        ex.response_complete();
        match send_paced(&mut send, data, last, &mut sent, &pace).await {
            Ok(()) => {}
            Err(slow) => {
                if slow {
                    shared.metrics.defend(Reason::SendTooSlow);
                    reason = Reason::SendTooSlow.label();
                    send.send_reset(h2::Reason::CANCEL);
                }
                ok = false;
                break;
            }
        }
    }
    let verdict = if reason == Reason::SendTooSlow.label() {
        Verdict::Block
    } else {
        Verdict::Allow
    };
    log(
        &site.name,
        status,
        verdict,
        reason,
        (bytes_in, sent),
        Some(origin_us),
        request_id,
    );
    if ok {
        ex.finish();
    }
}

fn cache_reason(label: &str) -> &'static str {
    match label {
        "HIT" => "cache_hit",
        "STALE" => "cache_stale",
        _ => "",
    }
}

/// Answer from the micro-cache; returns the body bytes sent.
async fn send_cached(
    respond: &mut SendResponse<Bytes>,
    e: &crate::cache::Entry,
    label: &'static str,
    head_only: bool,
    limits: &levee_config::Limits,
) -> u64 {
    let mut rb = http::Response::builder().status(e.status);
    for (n, v) in &e.headers {
        if h2_forbidden(n) || n.eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        rb = rb.header(&n[..], &v[..]);
    }
    for (n, v) in crate::cache::extra_headers(e, label) {
        rb = rb.header(n, v);
    }
    rb = rb.header("content-length", e.body.len());
    let Ok(resp) = rb.body(()) else { return 0 };
    let end = head_only || e.body.is_empty();
    let Ok(mut send) = respond.send_response(resp, end) else {
        return 0;
    };
    if end {
        return 0;
    }
    let pace = RateDeadline::new(limits.send_grace.as_duration(), limits.min_send_rate.0);
    let mut sent = 0u64;
    if send_paced(&mut send, e.body.clone(), true, &mut sent, &pace)
        .await
        .is_err()
    {
        send.send_reset(h2::Reason::CANCEL);
    }
    sent
}

/// Send `data` as flow control allows, before the rate deadline. `Err(true)`: too slow.
async fn send_paced(
    send: &mut h2::SendStream<Bytes>,
    mut data: Bytes,
    last: bool,
    sent: &mut u64,
    pace: &RateDeadline,
) -> Result<(), bool> {
    if data.is_empty() {
        return send.send_data(data, last).map_err(|_| false);
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let deadline = pace.at(*sent, data.len().min(64 * 1024) as u64);
        let cap = timeout_at(deadline, std::future::poll_fn(|cx| send.poll_capacity(cx))).await;
        let n = match cap {
            Err(_) => return Err(true),
            Ok(None) | Ok(Some(Err(_))) => return Err(false),
            Ok(Some(Ok(n))) => n.min(data.len()),
        };
        if n == 0 {
            continue;
        }
        let piece = data.split_to(n);
        let eos = last && data.is_empty();
        send.send_data(piece, eos).map_err(|_| false)?;
        *sent += n as u64;
    }
    Ok(())
}
