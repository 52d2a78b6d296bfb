//! Strict parsers for attacker-controlled bytes.
//!
//! Everything here is pure: functions take byte slices (and, for rate logic, the
//! time as a number), never sockets or clocks, and never panic on any input.
//! What they do:
//! - [`h1`]: HTTP/1.x request and response heads, with the smuggling-shape checks
//!   (duplicate or conflicting framing headers, obs-fold, bare LF, bad bytes,
//!   size caps) that decide between a head the edge may forward and a [`h1::Reject`].
//! - [`chunked`]: a strict chunked-body decoder (the edge re-encodes what it forwards).
//! - [`proxy_proto`]: PROXY protocol v1 and v2 headers.
//! - [`h2meter`]: a byte-level HTTP/2 frame counter that spots PING, SETTINGS,
//!   RST_STREAM, empty-DATA, WINDOW_UPDATE and CONTINUATION floods.
//! - [`h2fp`]: the client's passive HTTP/2 fingerprint (Akamai: SETTINGS,
//!   WINDOW_UPDATE, PRIORITY, pseudo-field order), read by the meter.
//! - [`tls_hello`]: the TLS ClientHello from the first records, and its JA4
//!   fingerprint.
//! - [`target`]: the request target normalised once (dot-segments, slashes,
//!   escapes), query parameters, the open-redirect guard.
//! - [`host`]: `Host`/`:authority` parsed strictly and normalised.
//! - [`fields`]: the client address behind trusted proxies, cookies,
//!   `Connection` tokens, `Content-Length`, `Cache-Control`.
//!
//! What they do not do: I/O, routing, or deciding what to do about a flood.

pub mod chunked;
pub mod fields;
pub mod h1;
pub mod h2fp;
pub mod h2meter;
pub mod host;
pub mod proxy_proto;
pub mod target;
pub mod tls_hello;
