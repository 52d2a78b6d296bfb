//! HTTP/2 client connections (TLS with ALPN `h2`, or h2c with prior knowledge).
//!
//! Every limit is set explicitly on the `h2` builder. In front of the library
//! sits a frame meter ([`levee_http::h2meter`]) that counts PING, SETTINGS,
//! RST_STREAM, empty DATA, WINDOW_UPDATE and CONTINUATION frames. Streams
//! whose origin work is still running count against `max_concurrent_streams`
//! even after the client reset them (Rapid Reset, CVE-2023-44487); new
//! streams beyond that are refused, and too many refusals, like any flood,
//! end the connection with GOAWAY(ENHANCE_YOUR_CALM) and mark the client.

use crate::body::{BodyError, BodySource, SendFraming};
use crate::clock::now_ms;
use crate::conn::Peer;
use crate::metrics::Reason;
use crate::pace::{RateDeadline, SendFail};
use crate::pipeline::{self, Cx, Downstream, Head, RespBody};
use crate::state::State;
use crate::upstream::Exchange;
use crate::Shared;
use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
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
    /// The client's HTTP/2 fingerprint, published by the meter once whole.
    fingerprint: std::sync::OnceLock<Arc<str>>,
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
        if let Err(f) = me.meter.feed(new, now_ms()) {
            // Take the bytes back: the library never sees the flood, and the
            // connection task answers it with GOAWAY(ENHANCE_YOUR_CALM).
            buf.set_filled(before);
            me.flag.flood.store(f as u8, Ordering::Release);
            me.flag.notify.notify_one();
            return Poll::Pending;
        }
        if me.meter.fingerprint().done() && me.flag.fingerprint.get().is_none() {
            if let Some(t) = me.meter.fingerprint().text() {
                let _ = me.flag.fingerprint.set(Arc::from(t));
            }
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
pub(crate) async fn serve<S>(io: S, prefix: Bytes, peer: Peer, shared: Arc<Shared>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = shared.state.load_full();
    let h = &state.cfg.http2;
    let limits = &state.cfg.limits;
    let flag = Arc::new(FloodFlag {
        flood: AtomicU8::new(NO_FLOOD),
        notify: Notify::new(),
        fingerprint: std::sync::OnceLock::new(),
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
    // Once draining, the connection has this long to finish its streams
    // (a client that grants no flow-control window never lets them end).
    let drain = limits.drain_timeout.as_duration().min(idle);
    let mut drain_at = draining.then(|| tokio::time::Instant::now() + drain);
    loop {
        let idle_at = last_active + idle;
        tokio::select! {
            biased;
            _ = flag.notify.notified() => {
                flood = flood_from(flag.flood.load(Ordering::Acquire));
                if flood.is_some() { break; }
            }
            acc = conn.accept() => match acc {
                // A graceful end, by either side (h2 returns `None` only when
                // both GOAWAY reasons are NO_ERROR; its own guards' GOAWAY
                // comes back as an error, below). Never a mark: a client that
                // says goodbye politely is not abusive (review finding 21).
                None => break,
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
                    let fp = flag.fingerprint.get().cloned();
                    tokio::spawn(stream(req, respond, peer.clone(), Arc::clone(&shared), Arc::clone(&state), guard, fp));
                }
            },
            _ = shutdown.changed(), if !draining => {
                conn.graceful_shutdown();
                draining = true;
                drain_at = Some(tokio::time::Instant::now() + drain);
            }
            _ = tokio::time::sleep_until(idle_at), if !draining && in_flight.load(Ordering::Acquire) == 0 => {
                shared.metrics.defend(Reason::IdleTimeout);
                conn.graceful_shutdown();
                draining = true;
                drain_at = Some(tokio::time::Instant::now() + drain);
            }
            _ = tokio::time::sleep_until(drain_at.unwrap_or(idle_at)), if drain_at.is_some() => {
                // Streams that could not finish in time: cut.
                conn.abrupt_shutdown(h2::Reason::NO_ERROR);
                break;
            }
        }
    }
    if let Some(f) = flood {
        // Counted once, as the flood it was (refuse_connection below).
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
    pace: RateDeadline,
    done: bool,
}

impl H2Body {
    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        if self.done {
            return Ok(None);
        }
        let d = timeout_at(self.pace.at(self.received, 1), self.body.data()).await;
        match d {
            Err(_) => Err(BodyError::TooSlow),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Ok(Some(Err(_))) => Err(BodyError::Closed),
            Ok(Some(Ok(data))) => {
                let _ = self.body.flow_control().release_capacity(data.len());
                self.received += data.len() as u64;
                if self.body.is_end_stream() {
                    self.done = true;
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

async fn stream(
    req: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    peer: Peer,
    shared: Arc<Shared>,
    state: Arc<State>,
    _in_flight: InFlight,
    fingerprint: Option<Arc<str>>,
) {
    let started = Instant::now();
    shared.metrics.requests_h2.fetch_add(1, Ordering::Relaxed);
    let limits = &state.cfg.limits;
    let (parts, body) = req.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let host = match parts.uri.authority() {
        Some(a) => levee_http::host::parse(a.as_str().as_bytes()),
        None => match parts.headers.get(http::header::HOST) {
            Some(v) => levee_http::host::parse(v.as_bytes()),
            None => Err(levee_http::host::HostError::Empty),
        },
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| levee_http::fields::content_length(v.as_bytes()));
    let framing = if body.is_end_stream() {
        SendFraming::None
    } else {
        match declared {
            Some(n) => SendFraming::Length(n),
            None => SendFraming::Chunked,
        }
    };
    let head = Head {
        method: parts.method.as_str().as_bytes(),
        target: target.as_bytes(),
        host,
        fields: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().as_bytes(), v.as_bytes()))
            .collect(),
        proto: if peer.tls.is_some() { "h2" } else { "h2c" },
        body: framing,
        declared_len: declared,
        keep_alive: true,
        websocket: false,
        h2_fingerprint: fingerprint.as_deref(),
    };
    let done = body.is_end_stream();
    let mut down = H2Down {
        respond,
        send: None,
        body: H2Body {
            body,
            received: 0,
            pace: RateDeadline::new(limits.body_grace.as_duration(), limits.min_body_rate.0),
            done,
        },
        pace: RateDeadline::new(limits.send_grace.as_duration(), limits.min_send_rate.0),
        sent: 0,
    };
    let cx = Cx {
        shared: &shared,
        state: &state,
        peer: &peer,
        started,
    };
    pipeline::serve(&cx, head, &mut down).await;
}

/// The HTTP/2 side of a request: a stream's response, paced by flow control.
struct H2Down {
    respond: SendResponse<Bytes>,
    send: Option<SendStream<Bytes>>,
    body: H2Body,
    pace: RateDeadline,
    sent: u64,
}

impl H2Down {
    fn start(
        &mut self,
        status: u16,
        fields: &[(&[u8], &[u8])],
        len: Option<u64>,
        end: bool,
    ) -> Result<(), SendFail> {
        let mut rb = http::Response::builder().status(status);
        for (n, v) in fields {
            rb = rb.header(*n, *v);
        }
        if let Some(n) = len {
            rb = rb.header("content-length", n);
        }
        let resp = rb.body(()).map_err(|_| SendFail::Gone)?;
        let s = self
            .respond
            .send_response(resp, end)
            .map_err(|_| SendFail::Gone)?;
        if !end {
            self.send = Some(s);
        }
        Ok(())
    }
}

impl Downstream for H2Down {
    type Body = H2Body;

    fn body(&mut self) -> &mut H2Body {
        &mut self.body
    }

    fn body_progress(&self) -> (u64, bool) {
        (self.body.received, self.body.done)
    }

    async fn whole(
        &mut self,
        status: u16,
        fields: &[(&[u8], &[u8])],
        body: &Bytes,
        head_only: bool,
        _close: bool,
    ) -> Result<(), SendFail> {
        let end = head_only || body.is_empty();
        self.start(status, fields, Some(body.len() as u64), end)?;
        if end {
            return Ok(());
        }
        self.data(body.clone(), true).await
    }

    async fn head(
        &mut self,
        status: u16,
        fields: &[(&[u8], &[u8])],
        body: RespBody,
        _close: bool,
    ) -> Result<(), SendFail> {
        // A bodiless response's Content-Length (HEAD) is among the fields already.
        let (len, end) = match body {
            RespBody::None => (None, true),
            RespBody::Length(n) => (Some(n), n == 0),
            RespBody::Stream => (None, false),
        };
        self.start(status, fields, len, end)
    }

    async fn data(&mut self, data: Bytes, last: bool) -> Result<(), SendFail> {
        let Some(send) = self.send.as_mut() else {
            return Ok(());
        };
        let r = send_paced(send, data, last, &mut self.sent, &self.pace).await;
        // A stream too slow to read is reset by `abort`, which the pipeline
        // calls once for every defense of that kind.
        if (last && r.is_ok()) || r == Err(SendFail::Gone) {
            self.send = None;
        }
        r
    }

    fn sent(&self) -> u64 {
        self.sent
    }

    fn abort(&mut self) {
        if let Some(mut s) = self.send.take() {
            s.send_reset(h2::Reason::CANCEL);
        } else {
            self.respond.send_reset(h2::Reason::CANCEL);
        }
    }

    fn closing(&self) -> bool {
        false
    }

    async fn upgrade(
        &mut self,
        _ex: Exchange,
        _fields: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<u64, SendFail> {
        // HTTP/2 requests are never WebSocket upgrades here (no extended CONNECT).
        Err(SendFail::Gone)
    }
}

/// Send `data` as flow control allows, before the rate deadline.
async fn send_paced(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    last: bool,
    sent: &mut u64,
    pace: &RateDeadline,
) -> Result<(), SendFail> {
    if data.is_empty() {
        if !last {
            return Ok(());
        }
        return send.send_data(data, true).map_err(|_| SendFail::Gone);
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let deadline = pace.at(*sent, data.len().min(64 * 1024) as u64);
        let cap = timeout_at(deadline, std::future::poll_fn(|cx| send.poll_capacity(cx))).await;
        let n = match cap {
            Err(_) => return Err(SendFail::TooSlow),
            Ok(None) | Ok(Some(Err(_))) => return Err(SendFail::Gone),
            Ok(Some(Ok(n))) => n.min(data.len()),
        };
        if n == 0 {
            continue;
        }
        let piece = data.split_to(n);
        let eos = last && data.is_empty();
        send.send_data(piece, eos).map_err(|_| SendFail::Gone)?;
        *sent += n as u64;
    }
    Ok(())
}
