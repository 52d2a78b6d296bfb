//! The seam between the pipeline and a client connection: how a response
//! reaches the client, whatever the protocol. HTTP/1 and HTTP/2 each
//! implement [`Downstream`]; the pipeline never knows which it talks to.
//!
//! Every write is held to the send-rate deadline (`limits.min_send_rate`
//! after `send_grace`), including the edge's own short answers: a client
//! that does not read is cut, whoever wrote the response.

use crate::body::BodySource;
use crate::pace::SendFail;
use crate::upstream::Exchange;
use bytes::Bytes;
use std::future::Future;

/// How a response's body follows its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RespBody {
    /// No body (HEAD, 204, 304): the origin's own `Content-Length`, if any,
    /// is among the fields and passes through.
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Unknown length: chunked (HTTP/1.1), close-delimited (HTTP/1.0) or DATA frames.
    Stream,
}

/// A client connection (HTTP/1) or stream (HTTP/2), as the pipeline sees it.
pub(crate) trait Downstream: Send {
    type Body: BodySource + Send;

    /// The request body.
    fn body(&mut self) -> &mut Self::Body;

    /// Request-body bytes received so far, and whether the body was read to its end.
    fn body_progress(&self) -> (u64, bool);

    /// A whole response: `fields` (no framing fields) and `body`, paced.
    /// `close`: the connection ends after it (HTTP/1).
    fn whole(
        &mut self,
        status: u16,
        fields: &[(&[u8], &[u8])],
        body: &Bytes,
        head_only: bool,
        close: bool,
    ) -> impl Future<Output = Result<(), SendFail>> + Send;

    /// A response head; the body follows through [`Downstream::data`].
    fn head(
        &mut self,
        status: u16,
        fields: &[(&[u8], &[u8])],
        body: RespBody,
        close: bool,
    ) -> impl Future<Output = Result<(), SendFail>> + Send;

    /// A piece of the body, paced; `last` ends it. An empty piece that is not
    /// the last pushes out what is buffered (the head).
    fn data(
        &mut self,
        data: Bytes,
        last: bool,
    ) -> impl Future<Output = Result<(), SendFail>> + Send;

    /// A buffer to write the upstream head into (HTTP/1 lends its
    /// connection's output buffer, so a request allocates none).
    fn scratch(&mut self) -> Vec<u8> {
        Vec::with_capacity(1024)
    }

    /// The buffer lent by [`Downstream::scratch`], back.
    fn give_back(&mut self, _buf: Vec<u8>) {}

    /// Response bytes sent so far.
    fn sent(&self) -> u64;

    /// End the response abortively (a reset, not a clean end).
    fn abort(&mut self);

    /// The connection will close after this response (whatever was asked).
    fn closing(&self) -> bool;

    /// Splice the connection with the origin after a `101` (WebSocket).
    /// Returns the bytes of the 101 head; `Err` when the protocol cannot.
    fn upgrade(
        &mut self,
        ex: Exchange,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> impl Future<Output = Result<u64, SendFail>> + Send;
}
