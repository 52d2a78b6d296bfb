//! HTTP/1.x client connections: the driver only. It waits for the first
//! byte (idle timeout), reads the whole head before an absolute deadline
//! (slowloris), parses it strictly (anything ambiguous is refused and the
//! connection closed), hands it to the [`crate::pipeline`] with a
//! [`Downstream`] that writes HTTP/1 (framing, keep-alive, 100-continue,
//! reset on slow read, the WebSocket splice), and loops for keep-alive.

use crate::body::{BodyError, BodySource, SendFraming};
use crate::conn::{Abortable, Peer};
use crate::metrics::Reason;
use crate::pace::{write_paced, RateDeadline, SendFail};
use crate::pipeline::record::{self, Asked, Record};
use crate::pipeline::{self, Cx, Downstream, Flow, Head, RespBody};
use crate::upstream::Exchange;
use crate::{Shared, Verdict};
use bytes::{Bytes, BytesMut};
use levee_http::chunked;
use levee_http::h1::{self as parse, reason_phrase, Framing, Parsed, RequestHead};
use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout_at, Instant as TInstant};

/// Buffers larger than this are given back between requests, so that an
/// idle keep-alive connection stays small after a large response.
const KEEP_CAPACITY: usize = 4096;

/// Serve an HTTP/1 connection. `buf` holds bytes already read from it.
pub(crate) async fn serve<S>(mut io: S, mut buf: BytesMut, peer: Peer, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Abortable,
{
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
            if buf.capacity() > KEEP_CAPACITY {
                buf = BytesMut::new();
            }
            if out.capacity() > KEEP_CAPACITY {
                out = Vec::new();
            }
            let wait = if served == 0 {
                header_timeout
            } else {
                limits.idle_timeout.as_duration() / tight
            };
            if shared.shutting_down() {
                return;
            }
            buf.reserve(2048);
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
        // 2. The whole head before an absolute deadline, however steadily it
        //    trickles. The parser runs only once the end of the head is in
        //    the buffer (or the buffer is at its cap), found by scanning each
        //    byte once: a head sent a byte per segment costs linear time.
        let started = Instant::now();
        let deadline = TInstant::now() + header_timeout;
        let mut scanned = 0usize;
        let head = loop {
            let complete = head_end(&buf, &mut scanned)
                || buf.len() >= state.head_limits.max_head_bytes
                || (!buf[..scanned].contains(&b'\n')
                    && buf.len() > state.head_limits.max_uri_bytes + 32);
            if complete {
                match parse::parse_request(&buf, &state.head_limits) {
                    Ok(Parsed::Complete(h)) => break h,
                    Ok(Parsed::Partial) => {}
                    Err(r) => {
                        Box::pin(refuse_head(
                            &mut io,
                            &shared,
                            &peer,
                            r.status(),
                            Reason::Http(r),
                            started,
                        ))
                        .await;
                        return;
                    }
                }
            }
            if buf.capacity() - buf.len() < 512 {
                buf.reserve(2048);
            }
            match timeout_at(deadline, io.read_buf(&mut buf)).await {
                Err(_) => {
                    Box::pin(refuse_head(
                        &mut io,
                        &shared,
                        &peer,
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
        let cx = Cx {
            shared: &shared,
            state: &state,
            peer: &peer,
            started,
        };
        // Boxed: a request's state exists only while a request is handled,
        // so an idle connection stays small.
        let (flow, tunnel) = Box::pin(handle(
            &mut io, &mut buf, &raw, head, keep_alive, &cx, &mut out,
        ))
        .await;
        match flow {
            Flow::Continue => {}
            Flow::Upgraded => {
                if let Some(ex) = tunnel {
                    Box::pin(splice(
                        &mut io,
                        ex,
                        limits.idle_timeout.as_duration(),
                        &shared,
                    ))
                    .await;
                }
                return;
            }
            Flow::Close => {
                Box::pin(close(&mut io)).await;
                return;
            }
        }
    }
}

/// Whether `buf` holds the end of a request head (`\n\r\n`, or `\n\n`,
/// which the parser refuses). `scanned` remembers how far it looked.
fn head_end(buf: &[u8], scanned: &mut usize) -> bool {
    let from = scanned.saturating_sub(2);
    let found = buf[from..].windows(2).enumerate().any(|(i, w)| {
        w[0] == b'\n' && (w[1] == b'\n' || (w[1] == b'\r' && buf.get(from + i + 2) == Some(&b'\n')))
    });
    *scanned = buf.len();
    found
}

async fn handle<S>(
    io: &mut S,
    buf: &mut BytesMut,
    raw: &Bytes,
    head: RequestHead,
    keep_alive: bool,
    cx: &Cx<'_>,
    out: &mut Vec<u8>,
) -> (Flow, Option<Exchange>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + Abortable,
{
    let limits = &cx.state.cfg.limits;
    let has_body = head.framing != Framing::None;
    let RequestHead {
        method,
        path,
        minor_version,
        headers,
        host,
        framing,
        keep_alive: _,
        expect_continue,
        websocket,
        len: _,
    } = head;
    let fields: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|(n, v)| (&raw[n.clone()], &raw[v.clone()]))
        .collect();
    let mut down = H1Down {
        body: H1Body {
            io,
            buf,
            kind: match framing {
                Framing::Length(n) => BodyKind::Length(n),
                Framing::Chunked => BodyKind::Chunked(chunked::Decoder::new()),
                _ => BodyKind::Done,
            },
            received: 0,
            pace: RateDeadline::since(
                TInstant::from_std(cx.started),
                limits.body_grace.as_duration(),
                limits.min_body_rate.0,
            ),
            continue_pending: expect_continue && has_body,
        },
        out,
        minor: minor_version,
        send: (limits.send_grace.as_duration(), limits.min_send_rate.0),
        pace: None,
        total: 0,
        head_bytes: 0,
        chunked: false,
        closing: false,
        tunnel: None,
    };
    let p = Head {
        method: &raw[method],
        target: &raw[path],
        host: Ok(host),
        fields,
        proto: if minor_version == 0 {
            "http/1.0"
        } else {
            "http/1.1"
        },
        body: match framing {
            Framing::None | Framing::Close => SendFraming::None,
            Framing::Length(n) => SendFraming::Length(n),
            Framing::Chunked => SendFraming::Chunked,
        },
        declared_len: match framing {
            Framing::Length(n) => Some(n),
            _ => None,
        },
        keep_alive,
        websocket,
        h2_fingerprint: None,
    };
    let flow = pipeline::serve(cx, p, &mut down).await;
    (flow, down.tunnel.take())
}

/// Answer a refused head (its status names the reason), close, count and log it.
async fn refuse_head<S: AsyncWrite + Unpin>(
    io: &mut S,
    shared: &Shared,
    peer: &Peer,
    status: u16,
    reason: Reason,
    started: Instant,
) {
    let body = crate::proxy::error_text(status, reason.label());
    let resp = crate::proxy::own_response(status, &body, true, None);
    let mut rec = Record::new(status, Verdict::Block, crate::answer::Why::Defense(reason));
    rec.count(shared);
    let _ = tokio::time::timeout(Duration::from_secs(1), io.write_all(&resp)).await;
    close(io).await;
    rec.bytes_out = body.len() as u64;
    let asked = Asked {
        client: peer.ip,
        site: "",
        method: "",
        path: "",
        proto: "http/1.1",
        h2fp: None,
        started,
        data: None,
        tally: None,
    };
    record::finish(shared, peer, &asked, &rec);
}

async fn close<S: AsyncWrite + Unpin>(io: &mut S) {
    let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
}

/// The request body of an HTTP/1 client, read at a minimum rate.
struct H1Body<'a, S> {
    io: &'a mut S,
    buf: &'a mut BytesMut,
    kind: BodyKind,
    received: u64,
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
            let w = self.io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            match timeout_at(self.pace.at(0, 25), w).await {
                Ok(Ok(())) => {}
                _ => return Err(BodyError::Closed),
            }
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

/// Bodies up to this size are copied behind their head and written at once;
/// larger ones are written from the shared buffer, never copied.
const COALESCE: usize = 16 * 1024;

/// The HTTP/1 side of a request: writes heads and bodies, paced.
struct H1Down<'a, S> {
    body: H1Body<'a, S>,
    /// The head (and small bodies) waiting to be written.
    out: &'a mut Vec<u8>,
    minor: u8,
    /// `send_grace`, `min_send_rate`.
    send: (Duration, u64),
    pace: Option<RateDeadline>,
    /// Bytes written, heads included.
    total: u64,
    head_bytes: u64,
    chunked: bool,
    closing: bool,
    /// After a 101: the origin exchange to splice with.
    tunnel: Option<Exchange>,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + Abortable> H1Down<'_, S> {
    fn status_line(&mut self, status: u16) {
        let _ = write!(self.out, "HTTP/1.1 {status} {}\r\n", reason_phrase(status));
    }

    fn fields(&mut self, fields: &[(&[u8], &[u8])]) {
        for (n, v) in fields {
            self.out.extend_from_slice(n);
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(v);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    fn end_head(&mut self, close: bool) {
        if close {
            self.closing = true;
        }
        if self.closing {
            self.out.extend_from_slice(b"connection: close\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        self.head_bytes += self.out.len() as u64;
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), SendFail> {
        let (grace, rate) = self.send;
        let pace = *self
            .pace
            .get_or_insert_with(|| RateDeadline::new(grace, rate));
        write_paced(self.body.io, data, &mut self.total, &pace).await
    }

    async fn flush(&mut self) -> Result<(), SendFail> {
        if self.out.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(self.out);
        let r = self.write(&pending).await;
        *self.out = pending;
        self.out.clear();
        r
    }
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin + Send + Abortable> Downstream for H1Down<'a, S> {
    type Body = H1Body<'a, S>;

    fn body(&mut self) -> &mut Self::Body {
        &mut self.body
    }

    fn body_progress(&self) -> (u64, bool) {
        (self.body.received, matches!(self.body.kind, BodyKind::Done))
    }

    async fn whole(
        &mut self,
        status: u16,
        fields: &[(&[u8], &[u8])],
        body: &Bytes,
        head_only: bool,
        close: bool,
    ) -> Result<(), SendFail> {
        self.out.clear();
        self.status_line(status);
        self.fields(fields);
        let _ = write!(self.out, "content-length: {}\r\n", body.len());
        self.end_head(close);
        if head_only || body.is_empty() {
            return self.flush().await;
        }
        if body.len() <= COALESCE {
            self.out.extend_from_slice(body);
            return self.flush().await;
        }
        self.flush().await?;
        self.write(body).await
    }

    async fn head(
        &mut self,
        status: u16,
        fields: &[(&[u8], &[u8])],
        body: RespBody,
        close: bool,
    ) -> Result<(), SendFail> {
        self.out.clear();
        self.status_line(status);
        self.fields(fields);
        match body {
            RespBody::None => {}
            RespBody::Length(n) => {
                let _ = write!(self.out, "content-length: {n}\r\n");
            }
            RespBody::Stream if self.minor >= 1 => {
                self.out
                    .extend_from_slice(b"transfer-encoding: chunked\r\n");
                self.chunked = true;
            }
            // HTTP/1.0 with an unknown length: close-delimited.
            RespBody::Stream => self.closing = true,
        }
        self.end_head(close);
        Ok(())
    }

    async fn data(&mut self, data: Bytes, last: bool) -> Result<(), SendFail> {
        if !data.is_empty() {
            if self.chunked {
                let _ = write!(self.out, "{:x}\r\n", data.len());
            }
            if data.len() <= COALESCE {
                self.out.extend_from_slice(&data);
            } else {
                self.flush().await?;
                self.write(&data).await?;
            }
            if self.chunked {
                self.out.extend_from_slice(b"\r\n");
            }
        }
        if last && self.chunked {
            self.out.extend_from_slice(b"0\r\n\r\n");
            self.chunked = false;
        }
        self.flush().await
    }

    fn scratch(&mut self) -> Vec<u8> {
        std::mem::take(self.out)
    }

    fn give_back(&mut self, buf: Vec<u8>) {
        *self.out = buf;
        self.out.clear();
    }

    fn sent(&self) -> u64 {
        self.total.saturating_sub(self.head_bytes)
    }

    fn abort(&mut self) {
        self.body.io.reset_on_close();
        self.closing = true;
    }

    fn closing(&self) -> bool {
        self.closing
    }

    async fn upgrade(
        &mut self,
        mut ex: Exchange,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<u64, SendFail> {
        self.out.clear();
        self.out
            .extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (n, v) in &fields {
            self.out.extend_from_slice(n);
            self.out.extend_from_slice(b": ");
            self.out.extend_from_slice(v);
            self.out.extend_from_slice(b"\r\n");
        }
        self.out.extend_from_slice(b"\r\n");
        let n = self.out.len() as u64;
        // Bytes the origin sent after its 101 go first.
        self.out.extend_from_slice(&ex.conn.buf);
        ex.conn.buf.clear();
        self.flush().await?;
        if !self.body.buf.is_empty() {
            let early = self.body.buf.split().freeze();
            let w = tokio::time::timeout(Duration::from_secs(5), ex.conn.io.write_all(&early));
            if !matches!(w.await, Ok(Ok(()))) {
                return Err(SendFail::Gone);
            }
        }
        // A tunnel is not an origin request in flight: its admission slot
        // goes back now, or 512 idle WebSockets would shut the site off.
        ex.release_slot();
        self.tunnel = Some(ex);
        Ok(n)
    }
}

/// A WebSocket tunnel: bytes both ways until either side closes, the tunnel
/// is idle for `idle`, or the edge shuts down.
async fn splice<S>(io: &mut S, mut ex: Exchange, idle: Duration, shared: &Shared)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let gauge = &shared.metrics.websockets_open;
    gauge.fetch_add(1, Ordering::Relaxed);
    let mut shutdown = shared.shutdown.clone();
    let mut a = [0u8; 8192];
    let mut b = [0u8; 8192];
    let origin = &mut ex.conn.io;
    loop {
        if shared.shutting_down() {
            break;
        }
        let moved = tokio::select! {
            r = io.read(&mut a) => match r {
                Ok(n) if n > 0 => tokio::time::timeout(idle, origin.write_all(&a[..n])).await.is_ok_and(|w| w.is_ok()),
                _ => false,
            },
            r = origin.read(&mut b) => match r {
                Ok(n) if n > 0 => tokio::time::timeout(idle, io.write_all(&b[..n])).await.is_ok_and(|w| w.is_ok()),
                _ => false,
            },
            _ = tokio::time::sleep(idle) => {
                shared.metrics.defend(Reason::IdleTimeout);
                false
            }
            _ = shutdown.changed() => false,
        };
        if !moved {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), origin.shutdown()).await;
    gauge.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::head_end;

    #[test]
    fn the_end_of_a_head_is_found_across_reads() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut scanned = 0;
        for i in 1..head.len() {
            assert!(!head_end(&head[..i], &mut scanned), "{i}");
        }
        assert!(head_end(head, &mut scanned));
        let mut scanned = 0;
        assert!(head_end(b"GET / HTTP/1.1\nHost: a\n\n", &mut scanned));
    }
}
