//! `[limits]` and `[http2]`: connection- and protocol-level defenses.

use crate::{ByteSize, Dur};
use serde::Deserialize;

/// Connection- and HTTP/1-level defenses. Defaults are safe for a public edge.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open client connections, all clients together.
    pub max_connections: u32,
    /// Open connections from one client address.
    pub max_connections_per_ip: u32,
    /// Open connections from one /24 (IPv4) or /64 (IPv6) prefix.
    pub max_connections_per_prefix: u32,
    /// Deadline for the TLS handshake.
    pub tls_handshake_timeout: Dur,
    /// Deadline for the PROXY protocol header from a trusted peer.
    pub proxy_protocol_timeout: Dur,
    /// Deadline for the whole request head, from its first byte (slowloris).
    pub header_timeout: Dur,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Dur,
    /// Minimum request body receive rate in bytes/s, after `body_grace` (slow POST).
    pub min_body_rate: ByteSize,
    /// Grace period before `min_body_rate` applies.
    pub body_grace: Dur,
    /// Minimum response send rate in bytes/s, after `send_grace` (slow read).
    pub min_send_rate: ByteSize,
    /// Grace period before `min_send_rate` applies.
    pub send_grace: Dur,
    /// Requests served on one connection before it is closed.
    pub max_requests_per_connection: u32,
    /// Requests one client address may have in flight at once (being
    /// forwarded or answered, across all its connections and streams); 0: no cap.
    pub max_requests_in_flight_per_ip: u32,
    /// The same for one /24 (IPv4) or /64 (IPv6); 0: no cap.
    pub max_requests_in_flight_per_prefix: u32,
    /// Size of the whole request head.
    pub max_header_bytes: ByteSize,
    /// Number of request header fields.
    pub max_headers: u32,
    /// Length of the request target.
    pub max_uri_bytes: ByteSize,
    /// Request body size.
    pub max_body_bytes: ByteSize,
    /// Request bodies up to this size are read completely (at `min_body_rate`)
    /// before the origin is contacted: a slow or malformed small body never
    /// reaches the origin. Larger bodies are streamed.
    pub request_buffer: ByteSize,
    /// Deadline for draining connections on shutdown.
    pub drain_timeout: Dur,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 50_000,
            max_connections_per_ip: 256,
            max_connections_per_prefix: 1024,
            tls_handshake_timeout: Dur::secs(5),
            proxy_protocol_timeout: Dur::secs(5),
            header_timeout: Dur::secs(10),
            idle_timeout: Dur::secs(60),
            min_body_rate: ByteSize(1024),
            body_grace: Dur::secs(5),
            min_send_rate: ByteSize(1024),
            send_grace: Dur::secs(5),
            max_requests_per_connection: 10_000,
            max_requests_in_flight_per_ip: 512,
            max_requests_in_flight_per_prefix: 2048,
            max_header_bytes: ByteSize(16 * 1024),
            max_headers: 100,
            max_uri_bytes: ByteSize(8 * 1024),
            max_body_bytes: ByteSize(10 * 1024 * 1024),
            request_buffer: ByteSize(64 * 1024),
            drain_timeout: Dur::secs(10),
        }
    }
}

/// HTTP/2 limits. None of the `h2` library defaults is relied upon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http2 {
    /// SETTINGS_MAX_CONCURRENT_STREAMS; also the cap on streams whose origin
    /// work is still running (a reset stream counts until its work ends).
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    pub max_header_list_size: ByteSize,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub max_frame_size: ByteSize,
    /// SETTINGS_INITIAL_WINDOW_SIZE (per stream).
    pub initial_stream_window: ByteSize,
    /// Connection-level receive window.
    pub initial_connection_window: ByteSize,
    /// Bytes buffered per stream towards the client.
    pub max_send_buffer: ByteSize,
    /// CONTINUATION frames allowed in one header block.
    pub max_continuation_frames: u32,
    /// Remotely reset streams queued before being accepted (h2's Rapid Reset guard).
    pub max_pending_accept_reset_streams: u32,
    /// Streams we reset because of the peer's protocol errors (MadeYouReset).
    pub max_local_error_reset_streams: u32,
    /// Locally reset streams remembered at once.
    pub max_concurrent_reset_streams: u32,
    /// Length of the flood-counting window.
    pub flood_window: Dur,
    /// RST_STREAM frames from the client per window.
    pub max_rst_frames: u32,
    /// PING frames per window.
    pub max_ping_frames: u32,
    /// SETTINGS frames per window.
    pub max_settings_frames: u32,
    /// DATA frames with an empty payload and no END_STREAM per window.
    pub max_empty_data_frames: u32,
    /// WINDOW_UPDATE frames per window.
    pub max_window_update_frames: u32,
    /// Streams refused because too many were in flight, per window.
    pub max_refused_streams: u32,
}

impl Default for Http2 {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 100,
            max_header_list_size: ByteSize(32 * 1024),
            max_frame_size: ByteSize(16 * 1024),
            initial_stream_window: ByteSize(256 * 1024),
            initial_connection_window: ByteSize(1024 * 1024),
            max_send_buffer: ByteSize(256 * 1024),
            max_continuation_frames: 8,
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 64,
            max_concurrent_reset_streams: 50,
            flood_window: Dur::secs(10),
            max_rst_frames: 200,
            max_ping_frames: 50,
            max_settings_frames: 50,
            max_empty_data_frames: 100,
            max_window_update_frames: 2000,
            max_refused_streams: 100,
        }
    }
}
