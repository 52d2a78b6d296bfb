//! HTTP/1.x client connections: the request loop with its deadlines.
//!
//! Per request, in order: wait for the first byte (idle timeout), read the
//! whole head before an absolute deadline (slowloris), parse it strictly
//! (anything ambiguous is refused and the connection closed), route by host
//! (unknown host: 421), check the body size, forward to an origin while
//! reading the body at a minimum rate (slow POST), and write the response at
//! a minimum rate (slow read). Every refusal gets a status or a close, a
//! metric and an access-log line.

use crate::accesslog::LogLine;
use crate::clock::unix_ms;
use crate::listener::Peer;
use crate::metrics::Reason;
use crate::proxy::{self, ClientFraming, UpstreamRequest};
use crate::upstream::{self, BodyError, BodySource, ProxyError, SendFraming};
use crate::{Shared, Verdict};
use bytes::{Bytes, BytesMut};
use levee_http::chunked;
use levee_http::h1::{self as parse, Framing, Parsed, RequestHead};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant as TInstant};

/// The drill opt-in path answered by the edge itself.
pub const DRILL_PATH: &[u8] = b"/.well-known/levee-drill";

/// A deadline for moving bytes at a minimum rate. A transfer must keep its
/// average since the start at or above `rate` after `grace`, and no single
/// piece may stall longer than `grace` plus its own length at `rate`: credit
/// earned by a fast start cannot be spent on a long stall.
#[derive(Debug, Clone, Copy)]
pub struct RateDeadline {
    start: TInstant,
    grace: Duration,
    rate: u64,
}

impl RateDeadline {
    pub fn new(grace: Duration, rate: u64) -> Self {
        RateDeadline {
            start: TInstant::now(),
            grace,
            rate: rate.max(1),
        }
    }
    /// When a piece of `piece` bytes, after `done` bytes already moved, must be done by.
    pub fn at(&self, done: u64, piece: u64) -> TInstant {
        let per = |n: u64| Duration::from_millis(n.saturating_mul(1000) / self.rate);
        let average = self.start + self.grace + per(done.saturating_add(piece));
        let stall = TInstant::now() + self.grace + per(piece);
        average.min(stall)
    }
}

/// Write all of `data` before the rate deadline. `Err(true)`: too slow.
pub async fn write_paced<S: AsyncWrite + Unpin>(
    io: &mut S,
    data: &[u8],
    sent: &mut u64,
    pace: &RateDeadline,
) -> Result<(), bool> {
    let mut off = 0;
    while off < data.len() {
        // Each piece must land by the deadline for the bytes sent so far plus this piece.
        let end = (off + 64 * 1024).min(data.len());
        let deadline = pace.at(*sent, (end - off) as u64);
        match timeout_at(deadline, io.write_all(&data[off..end])).await {
            Err(_) => return Err(true),
            Ok(Err(_)) => return Err(false),
            Ok(Ok(())) => {}
        }
        *sent += (end - off) as u64;
        off = end;
    }
    Ok(())
}

/// The request body of an HTTP/1 client, read at a minimum rate.
struct H1Body<'a, S> {
    io: &'a mut S,
    buf: &'a mut BytesMut,
    kind: BodyKind,
    received: u64,
    max: u64,
    pace: RateDeadline,
    continue_pending: bool,
}

enum BodyKind {
    Length(u64),
    Chunked(chunked::Decoder),
    Done,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> H1Body<'_, S> {
    async fn fill(&mut self) -> Result<(), BodyError> {
        if self.continue_pending {
            self.continue_pending = false;
            self.io
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| BodyError::Closed)?;
        }
        self.buf.reserve(16 * 1024);
        match timeout_at(self.pace.at(self.received, 1), self.io.read_buf(self.buf)).await {
            Err(_) => Err(BodyError::TooSlow),
            Ok(Ok(0)) | Ok(Err(_)) => Err(BodyError::Closed),
            Ok(Ok(_)) => Ok(()),
        }
    }

    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            match &mut self.kind {
                BodyKind::Done => return Ok(None),
                BodyKind::Length(left) => {
                    if !self.buf.is_empty() {
                        let n = (*left).min(self.buf.len() as u64) as usize;
                        *left -= n as u64;
                        if *left == 0 {
                            self.kind = BodyKind::Done;
                        }
                        self.received += n as u64;
                        return Ok(Some(self.buf.split_to(n).freeze()));
                    }
                }
                BodyKind::Chunked(dec) => {
                    let mut found: Option<(Option<Bytes>, bool)> = None;
                    while !self.buf.is_empty() {
                        let step = dec.decode(self.buf).map_err(|_| BodyError::Malformed)?;
                        let consumed = self.buf.split_to(step.consumed).freeze();
                        let done = dec.is_done();
                        if let Some(r) = step.data {
                            found = Some((Some(consumed.slice(r)), done));
                            break;
                        }
                        if done {
                            found = Some((None, true));
                            break;
                        }
                        if step.consumed == 0 {
                            break;
                        }
                    }
                    if let Some((data, done)) = found {
                        if done {
                            self.kind = BodyKind::Done;
                        }
                        if let Some(d) = &data {
                            self.received += d.len() as u64;
                            if self.received > self.max {
                                return Err(BodyError::TooLarge);
                            }
                        }
                        return Ok(data);
                    }
                }
            }
            self.fill().await?;
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> BodySource for H1Body<'_, S> {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>> + Send {
        self.next()
    }
}

struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    peer: &'a Peer,
}

impl Ctx<'_> {
    #[allow(clippy::too_many_arguments)]
    fn log(
        &self,
        head: Option<(&[u8], &RequestHead)>,
        site: &str,
        status: u16,
        verdict: Verdict,
        reason: &'static str,
        bytes: (u64, u64),
        started: Instant,
        origin_us: Option<u64>,
        client: std::net::IpAddr,
        request_id: String,
    ) {
        let m = &self.shared.metrics;
        m.status(status);
        m.bytes_in.fetch_add(bytes.0, Ordering::Relaxed);
        m.bytes_out.fetch_add(bytes.1, Ordering::Relaxed);
        if !self.shared.log.enabled() {
            return;
        }
        let (method, path, proto) = match head {
            Some((raw, h)) => (
                std::str::from_utf8(&raw[h.method.clone()]).unwrap_or(""),
                std::str::from_utf8(&raw[h.path.clone()]).unwrap_or(""),
                if h.minor_version == 0 {
                    "http/1.0"
                } else {
                    "http/1.1"
                },
            ),
            None => ("", "", "http/1.1"),
        };
        self.shared.log.log(&LogLine {
            ts_ms: unix_ms(),
            client,
            site,
            method,
            path,
            status,
            bytes_in: bytes.0,
            bytes_out: bytes.1,
            duration_us: started.elapsed().as_micros() as u64,
            origin_us,
            verdict,
            reason,
            tls: self.peer.tls.as_ref().map(|t| t.version),
            ja4: self.peer.tls.as_ref().and_then(|t| t.ja4.as_deref()),
            proto,
            request_id: &request_id,
        });
    }
}

/// Serve an HTTP/1 connection. `buf` holds bytes already read from it.
pub async fn serve<S>(mut io: S, mut buf: BytesMut, peer: Peer, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + crate::listener::Abortable,
{
    let ctx = Ctx {
        shared: &shared,
        peer: &peer,
    };
    let mut served: u32 = 0;
    let mut out: Vec<u8> = Vec::new();
    // One shutdown watcher for the connection's life, registered once.
    let mut shutdown_rx = shared.shutdown.clone();
    let shutdown = shutdown_rx.changed();
    tokio::pin!(shutdown);
    loop {
        let state = shared.state.load();
        let limits = &state.cfg.limits;
        // Under attack, header and idle deadlines are halved (a mode knob).
        let tight = if shared.tightened.load(Ordering::Relaxed) {
            2
        } else {
            1
        };
        let header_timeout = limits.header_timeout.as_duration() / tight;
        // 1. The first byte of the next request, within the idle timeout.
        if buf.is_empty() {
            let wait = if served == 0 {
                header_timeout
            } else {
                limits.idle_timeout.as_duration() / tight
            };
            if shared.shutting_down() {
                return;
            }
            if buf.capacity() - buf.len() < 512 {
                buf.reserve(2048);
            }
            let r = tokio::select! {
                biased;
                r = tokio::time::timeout(wait, io.read_buf(&mut buf)) => r,
                _ = &mut shutdown => return,
            };
            match r {
                Err(_) => {
                    if served == 0 {
                        // Connected and never sent a byte: a connection-flood bot.
                        let tls = peer.tls.as_ref().map(|t| t.version);
                        shared.refuse_connection(peer.ip, Reason::HeaderTimeout, tls, "http/1.1");
                    } else {
                        shared.metrics.defend(Reason::IdleTimeout);
                    }
                    return;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
            }
        }
        // 2. The whole head before an absolute deadline, however steadily it trickles.
        let started = Instant::now();
        let deadline = TInstant::now() + header_timeout;
        let head = loop {
            match parse::parse_request(&buf, &state.head_limits) {
                Ok(Parsed::Complete(h)) => break h,
                Ok(Parsed::Partial) => {}
                Err(r) => {
                    let reason = Reason::Http(r);
                    Box::pin(refuse_head(&mut io, &ctx, r.status(), reason, started)).await;
                    return;
                }
            }
            if buf.capacity() - buf.len() < 512 {
                buf.reserve(2048);
            }
            match timeout_at(deadline, io.read_buf(&mut buf)).await {
                Err(_) => {
                    Box::pin(refuse_head(
                        &mut io,
                        &ctx,
                        408,
                        Reason::HeaderTimeout,
                        started,
                    ))
                    .await;
                    return;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return,
                Ok(Ok(_)) => {}
            }
        };
        shared.metrics.requests_h1.fetch_add(1, Ordering::Relaxed);
        let raw = buf.split_to(head.len).freeze();
        served += 1;
        let mut keep_alive = head.keep_alive && !shared.shutting_down();
        if served >= limits.max_requests_per_connection && keep_alive {
            shared.metrics.defend(Reason::MaxRequestsPerConnection);
            keep_alive = false;
        }
        // Boxed: a request's state exists only while a request is handled,
        // so an idle connection stays small.
        match Box::pin(handle(
            &mut io,
            &mut buf,
            &raw,
            &head,
            &mut keep_alive,
            &ctx,
            &state,
            started,
            &mut out,
        ))
        .await
        {
            Flow::Continue if keep_alive => {}
            Flow::Upgraded => return,
            _ => {
                Box::pin(close(&mut io)).await;
                return;
            }
        }
    }
}

/// Answer a refused head (its status names the reason), close, count and log it.
async fn refuse_head<S: AsyncWrite + Unpin>(
    io: &mut S,
    ctx: &Ctx<'_>,
    status: u16,
    reason: Reason,
    started: Instant,
) {
    ctx.shared.metrics.defend(reason);
    let body = proxy::error_text(status, reason.label());
    let resp = proxy::own_response(status, &body, true, None);
    let _ = tokio::time::timeout(Duration::from_secs(1), io.write_all(&resp)).await;
    close(io).await;
    ctx.log(
        None,
        "",
        status,
        Verdict::Block,
        reason.label(),
        (0, resp.len() as u64),
        started,
        None,
        ctx.peer.ip,
        String::new(),
    );
}

async fn close<S: AsyncWrite + Unpin>(io: &mut S) {
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
}

enum Flow {
    Continue,
    Close,
    Upgraded,
}

#[allow(clippy::too_many_arguments)]
async fn handle<S>(
    io: &mut S,
    buf: &mut BytesMut,
    raw: &Bytes,
    head: &RequestHead,
    keep_alive: &mut bool,
    ctx: &Ctx<'_>,
    state: &crate::state::State,
    started: Instant,
    out: &mut Vec<u8>,
) -> Flow
where
    S: AsyncRead + AsyncWrite + Unpin + Send + crate::listener::Abortable,
{
    let shared = ctx.shared;
    let peer = ctx.peer;
    let limits = &state.cfg.limits;
    let headers = || {
        head.headers
            .iter()
            .map(|(n, v)| (&raw[n.clone()], &raw[v.clone()]))
    };
    let xff = if peer.trusted {
        headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(b"x-forwarded-for"))
            .map(|(_, v)| v)
    } else {
        None
    };
    let client = proxy::client_ip(peer.ip, xff, &state.cfg.trust);
    let has_body = head.framing != Framing::None;
    // A refusal before the body was read must close the connection: the body's bytes are still on it.
    let refuse = |status: u16, reason: Reason, close: bool, retry: Option<u32>, site: &str| {
        shared.metrics.defend(reason);
        let body = proxy::error_text(status, reason.label());
        let resp = proxy::own_response(status, &body, close, retry);
        let verdict = if status == 503 {
            Verdict::Shed
        } else {
            Verdict::Block
        };
        ctx.log(
            Some((raw, head)),
            site,
            status,
            verdict,
            reason.label(),
            (0, resp.len() as u64),
            started,
            None,
            client,
            String::new(),
        );
        resp
    };
    // The drill opt-in, answered by the edge itself.
    if &raw[head.path.clone()] == DRILL_PATH {
        let (status, body) = match &state.cfg.drill.token {
            Some(t) => (200, format!("{t}\n")),
            None => (404, "no drill token configured\n".to_string()),
        };
        let resp = proxy::own_response(status, &body, !*keep_alive || has_body, None);
        let _ = io.write_all(&resp).await;
        ctx.log(
            Some((raw, head)),
            "",
            status,
            Verdict::Allow,
            "",
            (0, resp.len() as u64),
            started,
            None,
            client,
            String::new(),
        );
        return if has_body {
            Flow::Close
        } else {
            Flow::Continue
        };
    }
    // Route by host; an unknown host never reaches an origin.
    let Some(site) = state.site_for_host(&raw[head.host.clone()]) else {
        let resp = refuse(421, Reason::UnknownHost, true, None, "");
        let _ = io.write_all(&resp).await;
        return Flow::Close;
    };
    if let Some(sni) = peer.tls.as_ref().and_then(|t| t.sni.as_deref()) {
        if !state
            .site_for_host(sni.as_bytes())
            .is_some_and(|s| Arc::ptr_eq(s, site))
        {
            let resp = refuse(421, Reason::MisdirectedSni, true, None, &site.name);
            let _ = io.write_all(&resp).await;
            return Flow::Close;
        }
    }
    site.requests.fetch_add(1, Ordering::Relaxed);
    let names = || levee_detect::features::header_order_label(headers().map(|(n, _)| n));
    // The gate's view of the request also gives the cache its cookies and Authorization.
    let (pass, cookies, authorized) = {
        let find = |name: &[u8]| {
            headers()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let guarded = site.challenge.mode != levee_config::ChallengeMode::Off
            || site.defense.mode() != levee_detect::Mode::Normal;
        let view = crate::gate::View {
            req: crate::challenge::Req {
                authorization: find(b"authorization"),
                marked: guarded && shared.is_marked(client),
                method: &raw[head.method.clone()],
                target: &raw[head.path.clone()],
                accept: find(b"accept"),
                cookies: headers()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
                    .map(|(_, v)| v)
                    .collect(),
                user_agent: find(b"user-agent").unwrap_or(b""),
                client,
                https: peer.tls.is_some(),
            },
            header_order: levee_detect::features::header_order_hash(headers().map(|(n, _)| n)),
            header_names: &names,
            ja4: peer.tls.as_ref().and_then(|t| t.ja4.as_deref()),
            h2: None,
        };
        match crate::gate::check(shared, state, site, &view) {
            Ok(p) => (p, view.req.cookies, view.req.authorization.is_some()),
            Err(ans) => {
                if let Some(d) = ans.delay {
                    tokio::time::sleep(d).await;
                }
                // A body the edge did not read is still on the connection: close it.
                let close = has_body || !*keep_alive || ans.close;
                let is_head = &raw[head.method.clone()] == b"HEAD";
                let resp = proxy::own_response_with(
                    ans.status,
                    ans.content_type,
                    &ans.headers,
                    &ans.body,
                    close,
                    is_head,
                );
                let _ = io.write_all(&resp).await;
                ctx.log(
                    Some((raw, head)),
                    &site.name,
                    ans.status,
                    ans.verdict,
                    ans.reason,
                    (0, resp.len() as u64),
                    started,
                    None,
                    client,
                    String::new(),
                );
                return if close { Flow::Close } else { Flow::Continue };
            }
        }
    };
    // Micro-cache (GET and HEAD without a body): fresh copies answer here,
    // concurrent misses wait for one fetch.
    let mut probe = crate::cache::Probe::default();
    if let (Some(c), false) = (&site.cache, has_body) {
        if let Some(k) = c.key(
            &raw[head.method.clone()],
            &raw[head.host.clone()],
            &raw[head.path.clone()],
            authorized,
            &cookies,
            pass.attack(),
        ) {
            probe = crate::cache::Probe::run(site, c, k).await;
        }
    }
    if let Some((e, label)) = probe.answer.take() {
        return serve_cached(
            io,
            ctx,
            (raw, head),
            &site.name,
            &e,
            label,
            keep_alive,
            started,
            client,
            limits,
        )
        .await;
    }
    let max_body = limits.max_body_bytes.0;
    if let Framing::Length(n) = head.framing {
        if n > max_body {
            let resp = refuse(413, Reason::BodyTooLarge, true, None, &site.name);
            let _ = io.write_all(&resp).await;
            return Flow::Close;
        }
    }
    let request_id = proxy::request_id();
    let framing = match head.framing {
        Framing::None | Framing::Close => SendFraming::None,
        Framing::Length(n) => SendFraming::Length(n),
        Framing::Chunked => SendFraming::Chunked,
    };
    let is_head = &raw[head.method.clone()] == b"HEAD";
    let mut body = H1Body {
        io: &mut *io,
        buf: &mut *buf,
        kind: match head.framing {
            Framing::Length(n) => BodyKind::Length(n),
            Framing::Chunked => BodyKind::Chunked(chunked::Decoder::new()),
            _ => BodyKind::Done,
        },
        received: 0,
        max: max_body,
        pace: RateDeadline::new(limits.body_grace.as_duration(), limits.min_body_rate.0),
        continue_pending: head.expect_continue && has_body,
    };
    // Small bodies are read completely before any origin is asked.
    let (mut src, framing) =
        match upstream::prebuffer(&mut body, framing, limits.request_buffer.0 as usize).await {
            Ok(x) => x,
            Err(e) => {
                let e = ProxyError::Client(e);
                let resp = refuse(e.status(), e.reason(), true, None, &site.name);
                if e != ProxyError::Client(BodyError::Closed) {
                    let _ = tokio::time::timeout(Duration::from_secs(2), io.write_all(&resp)).await;
                }
                return Flow::Close;
            }
        };
    out.clear();
    proxy::write_upstream_head(
        out,
        &UpstreamRequest {
            method: &raw[head.method.clone()],
            path: &raw[head.path.clone()],
            host: &raw[head.host.clone()],
            client,
            xff_in: xff,
            peer: peer.ip,
            https: peer.tls.is_some(),
            request_id: &request_id,
            framing,
            websocket: head.websocket,
        },
        headers(),
    );
    let result = probe
        .bounded(upstream::forward(
            site,
            out,
            framing,
            &mut src,
            is_head,
            &shared.metrics,
            (pass.class, pass.attack()),
        ))
        .await;
    drop(src);
    let body_done = matches!(body.kind, BodyKind::Done);
    let bytes_in = body.received;
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
                return serve_cached(
                    io,
                    ctx,
                    (raw, head),
                    &site.name,
                    &entry,
                    label,
                    keep_alive,
                    started,
                    client,
                    limits,
                )
                .await;
            }
            let close = !body_done || matches!(e, ProxyError::Client(_));
            let retry = (e == ProxyError::Busy).then_some(1);
            let resp = refuse(e.status(), e.reason(), close, retry, &site.name);
            if e != ProxyError::Client(BodyError::Closed) {
                let _ = tokio::time::timeout(Duration::from_secs(2), io.write_all(&resp)).await;
            }
            return if close { Flow::Close } else { Flow::Continue };
        }
    };
    if !body_done {
        // The origin answered before reading the whole body: the rest is unread, so close.
        *keep_alive = false;
    }
    let origin_us = ex.started.elapsed().as_micros() as u64;
    let status = ex.head.status;
    if status >= 500 {
        site.defense.error();
    }
    // A cacheable response is read whole, stored, and answered from the cache.
    if status != 101 {
        match probe.fill(&mut ex, is_head).await {
            None => {}
            Some(None) => {
                let resp = refuse(502, Reason::BadOriginResponse, true, None, &site.name);
                let _ = io.write_all(&resp).await;
                return Flow::Close;
            }
            Some(Some(entry)) => {
                ex.finish();
                drop(probe);
                return serve_cached(
                    io,
                    ctx,
                    (raw, head),
                    &site.name,
                    &entry,
                    "MISS",
                    keep_alive,
                    started,
                    client,
                    limits,
                )
                .await;
            }
        }
    }
    // WebSocket: after 101, splice the two connections.
    if status == 101 {
        if !head.websocket {
            let resp = refuse(502, Reason::BadOriginResponse, true, None, &site.name);
            let _ = io.write_all(&resp).await;
            return Flow::Close;
        }
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (n, v) in ex.headers() {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&ex.conn.buf);
        ex.conn.buf.clear();
        if io.write_all(out).await.is_err() {
            return Flow::Close;
        }
        if !buf.is_empty() && ex.conn.io.write_all(buf).await.is_err() {
            return Flow::Close;
        }
        ctx.log(
            Some((raw, head)),
            &site.name,
            101,
            Verdict::Allow,
            "",
            (bytes_in, out.len() as u64),
            started,
            Some(origin_us),
            client,
            request_id,
        );
        let _ = tokio::io::copy_bidirectional(io, &mut ex.conn.io).await;
        return Flow::Upgraded;
    }
    if shared.shutting_down() {
        *keep_alive = false;
    }
    let cframing = match ex.head.framing {
        Framing::None => ClientFraming::AsIs,
        Framing::Length(n) => ClientFraming::Length(n),
        Framing::Chunked | Framing::Close if head.minor_version == 1 => ClientFraming::Chunked,
        Framing::Chunked | Framing::Close => {
            *keep_alive = false;
            ClientFraming::Close
        }
    };
    out.clear();
    proxy::write_client_head(out, status, ex.headers(), cframing, *keep_alive);
    let pace = RateDeadline::new(limits.send_grace.as_duration(), limits.min_send_rate.0);
    let mut sent = 0u64;
    let mut failed: Option<Fail> = None;
    // Body bytes already read with the head go out in the same write.
    let chunked_out = cframing == ClientFraming::Chunked;
    let mut finished = ex.body.is_done();
    if !ex.conn.buf.is_empty() && !finished {
        match ex.body.next(&mut ex.conn).await {
            Ok(Some(d)) => push_body(out, &d, chunked_out),
            Ok(None) => {}
            Err(_) => failed = Some(Fail::Origin),
        }
        finished = ex.body.is_done();
    }
    if finished && chunked_out {
        out.extend_from_slice(b"0\r\n\r\n");
    }
    // The whole response is in hand: the origin's slot is free before the
    // client (perhaps a slow reader) gets a byte.
    ex.response_complete();
    if failed.is_none() {
        if let Err(slow) = write_paced(io, out, &mut sent, &pace).await {
            failed = Some(if slow {
                Fail::TooSlow
            } else {
                Fail::ClientGone
            });
        }
    }
    while failed.is_none() && !finished {
        match ex.body.next(&mut ex.conn).await {
            Ok(Some(d)) => {
                out.clear();
                push_body(out, &d, chunked_out);
                if ex.body.is_done() && chunked_out {
                    out.extend_from_slice(b"0\r\n\r\n");
                    finished = true;
                }
                ex.response_complete();
                if let Err(slow) = write_paced(io, out, &mut sent, &pace).await {
                    failed = Some(if slow {
                        Fail::TooSlow
                    } else {
                        Fail::ClientGone
                    });
                }
            }
            Ok(None) => {
                if chunked_out {
                    if let Err(slow) = write_paced(io, b"0\r\n\r\n", &mut sent, &pace).await {
                        failed = Some(if slow {
                            Fail::TooSlow
                        } else {
                            Fail::ClientGone
                        });
                    }
                }
                finished = true;
            }
            Err(_) => failed = Some(Fail::Origin),
        }
    }
    let (verdict, reason) = match failed {
        Some(Fail::TooSlow) => {
            io.reset_on_close();
            shared.metrics.defend(Reason::SendTooSlow);
            (Verdict::Block, Reason::SendTooSlow.label())
        }
        Some(Fail::Origin) => {
            shared.metrics.defend(Reason::BadOriginResponse);
            (Verdict::Allow, Reason::BadOriginResponse.label())
        }
        _ => (Verdict::Allow, ""),
    };
    ctx.log(
        Some((raw, head)),
        &site.name,
        status,
        verdict,
        reason,
        (bytes_in, sent),
        started,
        Some(origin_us),
        client,
        request_id,
    );
    if failed.is_some() {
        return Flow::Close;
    }
    ex.finish();
    Flow::Continue
}

/// How relaying a response body ended early.
enum Fail {
    /// The client read slower than the minimum send rate (slow read).
    TooSlow,
    /// The client went away.
    ClientGone,
    /// The origin's body broke off or was malformed.
    Origin,
}

/// Answer from the micro-cache.
#[allow(clippy::too_many_arguments)]
async fn serve_cached<S: AsyncWrite + Unpin>(
    io: &mut S,
    ctx: &Ctx<'_>,
    req: (&Bytes, &RequestHead),
    site: &str,
    e: &crate::cache::Entry,
    label: &'static str,
    keep_alive: &mut bool,
    started: Instant,
    client: std::net::IpAddr,
    limits: &levee_config::Limits,
) -> Flow {
    let is_head = &req.0[req.1.method.clone()] == b"HEAD";
    let resp = crate::cache::h1_response(e, label, *keep_alive, is_head);
    let pace = RateDeadline::new(limits.send_grace.as_duration(), limits.min_send_rate.0);
    let mut sent = 0u64;
    let ok = write_paced(io, &resp, &mut sent, &pace).await.is_ok();
    let reason = match label {
        "HIT" => "cache_hit",
        "STALE" => "cache_stale",
        _ => "",
    };
    ctx.log(
        Some((&req.0[..], req.1)),
        site,
        e.status,
        Verdict::Allow,
        reason,
        (0, sent),
        started,
        None,
        client,
        String::new(),
    );
    if ok && *keep_alive {
        Flow::Continue
    } else {
        Flow::Close
    }
}

fn push_body(out: &mut Vec<u8>, data: &[u8], chunked: bool) {
    if data.is_empty() {
        return;
    }
    if chunked {
        out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(data);
    }
}
