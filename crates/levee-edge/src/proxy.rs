//! What both client protocols share: the real client address, the request
//! head sent to the origin, the response head sent to an HTTP/1 client,
//! request ids and the edge's own error responses.

use crate::upstream::SendFraming;
use levee_config::Trust;
use levee_http::h1::{is_hop_by_hop, reason_phrase};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The client address for a request: the socket (or PROXY) peer, unless the
/// peer is a trusted proxy, in which case the right-most address of
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, xff: Option<&[u8]>, trust: &Trust) -> IpAddr {
    if !trust.trusts(peer) {
        return peer;
    }
    let Some(v) = xff.and_then(|v| std::str::from_utf8(v).ok()) else {
        return peer;
    };
    let mut client = peer;
    for part in v.rsplit(',') {
        match part.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = canonical(ip);
                if !trust.trusts(client) {
                    return client;
                }
            }
            Err(_) => return client,
        }
    }
    client
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A unique, unguessable-enough request id: a per-process random prefix and a counter.
pub fn request_id() -> String {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let p = *PREFIX.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let x = t ^ (u64::from(std::process::id()) << 32) ^ (&COUNTER as *const _ as u64);
        // splitmix64 finaliser
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // 12 hex digits of prefix, 8 of counter, without the formatting machinery.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let v = (u128::from(p & 0xffff_ffff_ffff) << 32) | u128::from(n as u32);
    let mut s = String::with_capacity(20);
    for i in (0..20).rev() {
        s.push(char::from(HEX[((v >> (4 * i)) & 15) as usize]));
    }
    s
}

/// Everything needed to write the request head sent to an origin.
pub struct UpstreamRequest<'a> {
    pub method: &'a [u8],
    pub path: &'a [u8],
    /// The Host value to send (as the client sent it).
    pub host: &'a [u8],
    pub client: IpAddr,
    /// The incoming `X-Forwarded-For`, kept only from trusted peers.
    pub xff_in: Option<&'a [u8]>,
    pub peer: IpAddr,
    pub https: bool,
    pub request_id: &'a str,
    pub framing: SendFraming,
    pub websocket: bool,
}

/// Names the edge always sets itself; a client's copies are dropped.
fn edge_owned(name: &[u8]) -> bool {
    const OWNED: [&[u8]; 5] = [
        b"host",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-request-id",
        b"forwarded",
    ];
    OWNED.iter().any(|o| o.eq_ignore_ascii_case(name))
}

fn listed_in(tokens: &[&[u8]], name: &[u8]) -> bool {
    tokens.iter().any(|t| t.eq_ignore_ascii_case(name))
}

/// Field names listed in `Connection` values (they are hop-by-hop too).
pub fn connection_tokens<'a>(headers: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(b"connection") {
            out.extend(
                v.split(|&b| b == b',')
                    .map(|t| t.trim_ascii())
                    .filter(|t| !t.is_empty()),
            );
        }
    }
    out
}

/// Write the HTTP/1.1 request head for the origin into `out`.
pub fn write_upstream_head<'a>(
    out: &mut Vec<u8>,
    r: &UpstreamRequest<'_>,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
) {
    out.extend_from_slice(r.method);
    out.push(b' ');
    if r.path.is_empty() {
        out.push(b'/');
    } else {
        out.extend_from_slice(r.path);
    }
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(r.host);
    out.extend_from_slice(b"\r\n");
    let tokens = connection_tokens(headers.clone());
    for (n, v) in headers {
        if is_hop_by_hop(n) || edge_owned(n) || listed_in(&tokens, n) || n.first() == Some(&b':') {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    if let Some(x) = r.xff_in {
        out.extend_from_slice(x);
        out.extend_from_slice(b", ");
        push_ip(out, r.peer);
    } else {
        push_ip(out, r.client);
    }
    out.extend_from_slice(b"\r\nx-forwarded-proto: ");
    out.extend_from_slice(if r.https { b"https" } else { b"http" });
    out.extend_from_slice(b"\r\nx-request-id: ");
    out.extend_from_slice(r.request_id.as_bytes());
    out.extend_from_slice(b"\r\n");
    match r.framing {
        SendFraming::None => {
            if !matches!(r.method, b"GET" | b"HEAD" | b"OPTIONS" | b"DELETE") {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
        }
        SendFraming::Length(n) => {
            let _ = write!(Bytes(out), "content-length: {n}\r\n");
        }
        SendFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if r.websocket {
        out.extend_from_slice(b"connection: upgrade\r\nupgrade: websocket\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Append an address as text; IPv4 without the formatting machinery (hot path).
pub fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                if *o >= 100 {
                    out.push(b'0' + o / 100);
                }
                if *o >= 10 {
                    out.push(b'0' + (o / 10) % 10);
                }
                out.push(b'0' + o % 10);
            }
        }
        IpAddr::V6(_) => {
            let _ = write!(Bytes(out), "{ip}");
        }
    }
}

/// `fmt::Write` into a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);
impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// How the edge frames a response body for an HTTP/1 client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFraming {
    /// Pass the origin's Content-Length through (bodiless responses, HEAD).
    AsIs,
    Length(u64),
    Chunked,
    /// Close-delimited (HTTP/1.0 clients with an unknown length).
    Close,
}

/// Write the response head for an HTTP/1 client.
pub fn write_client_head<'a>(
    out: &mut Vec<u8>,
    status: u16,
    headers: impl Iterator<Item = (&'a [u8], &'a [u8])> + Clone,
    framing: ClientFraming,
    keep_alive: bool,
) {
    let _ = write!(
        Bytes(out),
        "HTTP/1.1 {status} {}\r\n",
        reason_phrase(status)
    );
    let tokens = connection_tokens(headers.clone());
    for (n, v) in headers {
        let pass_length =
            framing == ClientFraming::AsIs && n.eq_ignore_ascii_case(b"content-length");
        if (is_hop_by_hop(n) && !pass_length) || listed_in(&tokens, n) {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        ClientFraming::Length(n) => {
            let _ = write!(Bytes(out), "content-length: {n}\r\n");
        }
        ClientFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        ClientFraming::AsIs | ClientFraming::Close => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// The edge's own short response (errors, 421, drill opt-in).
pub fn own_response(status: u16, body: &str, close: bool, retry_after: Option<u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + body.len());
    let _ = write!(
        Bytes(&mut out),
        "HTTP/1.1 {status} {}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\n",
        reason_phrase(status),
        body.len()
    );
    if let Some(s) = retry_after {
        let _ = write!(Bytes(&mut out), "retry-after: {s}\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// The edge's own response with extra fields (challenge pages, redirects).
pub fn own_response_with(
    status: u16,
    content_type: &str,
    extra: &[(&'static str, String)],
    body: &str,
    close: bool,
    head_only: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.len());
    let _ = write!(
        Bytes(&mut out),
        "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\ncache-control: no-store\r\n",
        reason_phrase(status),
        body.len()
    );
    for (n, v) in extra {
        let _ = write!(Bytes(&mut out), "{n}: {v}\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The body text of an edge error: short, and names the reason.
pub fn error_text(status: u16, reason: &str) -> String {
    format!("{status} {}: {reason} (levee)\n", reason_phrase(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(c: &[&str]) -> Trust {
        Trust {
            proxies: c.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn xff_only_from_trusted_peers() {
        let t = trust(&["10.0.0.0/8"]);
        let peer: IpAddr = "10.1.1.1".parse().unwrap();
        let out: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_ip(out, Some(b"1.2.3.4"), &t), out);
        assert_eq!(
            client_ip(peer, Some(b"1.2.3.4"), &t),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(peer, Some(b"6.6.6.6, 1.2.3.4, 10.2.2.2"), &t),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(peer, Some(b"garbage"), &t), peer);
        assert_eq!(client_ip(peer, None, &t), peer);
    }

    #[test]
    fn upstream_head_drops_hop_by_hop_and_spoofed_fields() {
        let hs: Vec<(&[u8], &[u8])> = vec![
            (b"Host", b"a.test"),
            (b"Connection", b"keep-alive, X-Secret"),
            (b"X-Secret", b"1"),
            (b"X-Forwarded-For", b"6.6.6.6"),
            (b"Accept", b"*/*"),
            (b"Transfer-Encoding", b"chunked"),
        ];
        let mut out = Vec::new();
        write_upstream_head(
            &mut out,
            &UpstreamRequest {
                method: b"POST",
                path: b"/x",
                host: b"a.test",
                client: "192.0.2.1".parse().unwrap(),
                xff_in: None,
                peer: "192.0.2.1".parse().unwrap(),
                https: false,
                request_id: "abc",
                framing: SendFraming::Chunked,
                websocket: false,
            },
            hs.iter().map(|(a, b)| (*a, *b)),
        );
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "POST /x HTTP/1.1\r\nhost: a.test\r\nAccept: */*\r\nx-forwarded-for: 192.0.2.1\r\nx-forwarded-proto: http\r\nx-request-id: abc\r\ntransfer-encoding: chunked\r\n\r\n"
        );
    }

    #[test]
    fn ip_text() {
        for ip in [
            "0.0.0.0",
            "9.10.99.100",
            "255.255.255.255",
            "127.0.0.1",
            "2001:db8::1",
        ] {
            let mut v = Vec::new();
            push_ip(&mut v, ip.parse().unwrap());
            assert_eq!(String::from_utf8(v).unwrap(), ip);
        }
    }

    #[test]
    fn request_ids_are_unique() {
        let a = request_id();
        let b = request_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
    }
}
