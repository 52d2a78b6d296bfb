//! The client's request body, as the origin exchange reads it: a
//! [`BodySource`] (an HTTP/1 connection or an HTTP/2 stream, read at the
//! minimum body rate), pre-buffered whole when small.

use bytes::Bytes;
use std::future::Future;

/// Why the client's request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyError {
    TooSlow,
    TooLarge,
    Malformed,
    Closed,
}

/// Where a request body comes from (an HTTP/1 connection or an HTTP/2 stream).
pub(crate) trait BodySource {
    /// The next piece of the body, `None` at its end.
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>> + Send;
}

/// A body held to `limits.max_body_bytes`, whatever its framing or protocol
/// (a chunked HTTP/1 body or HTTP/2 DATA frames without a declared length).
pub(crate) struct Capped<'b, B> {
    inner: &'b mut B,
    seen: u64,
    max: u64,
}

impl<'b, B> Capped<'b, B> {
    pub(crate) fn new(inner: &'b mut B, max: u64) -> Self {
        Capped {
            inner,
            seen: 0,
            max,
        }
    }
}

impl<B: BodySource + Send> BodySource for Capped<'_, B> {
    #[allow(clippy::manual_async_fn)] // the trait needs the `Send` bound spelled out
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>> + Send {
        async move {
            let c = self.inner.next_chunk().await?;
            if let Some(d) = &c {
                self.seen += d.len() as u64;
                if self.seen > self.max {
                    return Err(BodyError::TooLarge);
                }
            }
            Ok(c)
        }
    }
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
