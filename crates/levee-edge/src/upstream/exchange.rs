//! The HTTP/1.1 exchange with an origin: send the head and body, read the
//! response head, retry what is safe to retry, and read the body.

use crate::admission::Class;
use crate::clock::now_ms;
use crate::metrics::Metrics;
use bytes::Bytes;
use levee_http::chunked;
use levee_http::h1::{self, Framing, Parsed, ResponseHead};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::origin::{OriginPermit, UpConn};
use super::{BodySource, Origin, OriginSet, ProxyError, SendFraming, MAX_RESPONSE_HEAD};

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
    let started = tokio::time::Instant::now();
    let deadline = started + origin.response_timeout;
    let write = |r: Result<io::Result<()>, tokio::time::error::Elapsed>| match r {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "origin not reading",
        )),
    };
    // The head almost always fits the socket buffer at once: no timer then.
    let head_written = crate::pace::within(|| deadline, conn.io.write_all(head)).await;
    if !matches!(head_written, Some(Ok(()))) {
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
    let deadline = if framing == SendFraming::None {
        deadline
    } else {
        tokio::time::Instant::now() + origin.response_timeout
    };
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
