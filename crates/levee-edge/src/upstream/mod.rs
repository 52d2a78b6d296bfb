//! Origins: keep-alive connection pools, admission (a concurrency cap with a
//! short bounded queue), active and passive health ([`origin`]), and the
//! HTTP/1.1 exchange with an origin that the pipeline runs for both client
//! protocols ([`exchange`]). The client's side of a request body is
//! [`crate::body`].

mod exchange;
mod origin;

pub(crate) use crate::body::{BodyError, BodySource, SendFraming};
pub(crate) use exchange::{forward, Exchange};
pub(crate) use origin::{Origin, OriginSet};

use crate::metrics::Reason;

/// The largest response head read from an origin.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

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
