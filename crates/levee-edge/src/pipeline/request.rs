//! The request as every phase sees it: built once from what a driver read
//! (an HTTP/1 head or an HTTP/2 `Parts`), normalised by `levee-http`'s
//! parsers, and the head the origin receives, written from those same
//! values under the trust-boundary header policy.

use crate::conn::Peer;
use crate::upstream::SendFraming;
use levee_config::Trust;
use levee_http::fields;
use levee_http::h1::is_hop_by_hop;
use levee_http::host::{Host, HostError};
use levee_http::target::Target;
use std::fmt::Write as _;
use std::net::IpAddr;

/// What a driver hands the pipeline: the request's parts as read.
pub(crate) struct Head<'a> {
    pub method: &'a [u8],
    /// The target as sent (logged as is; normalised into [`Request::target`]).
    pub target: &'a [u8],
    /// The host, parsed by `levee_http::host` (from Host, `:authority` or an
    /// absolute-form target).
    pub host: Result<Host, HostError>,
    /// Every field line in order (HTTP/2: without pseudo-fields).
    pub fields: Vec<(&'a [u8], &'a [u8])>,
    /// `http/1.1`, `http/1.0`, `h2` or `h2c`.
    pub proto: &'static str,
    /// How the request body is framed towards the origin.
    pub body: SendFraming,
    /// The declared body length (`Content-Length`), if any.
    pub declared_len: Option<u64>,
    /// The connection may serve another request after this one (HTTP/1).
    pub keep_alive: bool,
    /// A valid WebSocket upgrade (HTTP/1 GET).
    pub websocket: bool,
    /// The client's passive HTTP/2 fingerprint (`levee_http::h2fp`), if HTTP/2.
    pub h2_fingerprint: Option<&'a str>,
}

/// The normalised request: what every policy judges and what is forwarded.
pub(crate) struct Request<'a> {
    pub head: Head<'a>,
    pub target: Target,
    pub host: Host,
    /// The client: the peer, or the last untrusted hop behind trusted proxies.
    pub client: IpAddr,
    /// The client reached the edge over TLS (its own, or a trusted proxy's).
    pub https: bool,
    /// The peer is a trusted proxy (its forwarding fields are believed).
    pub trusted_peer: bool,
}

impl<'a> Head<'a> {
    /// Every value of field `name`, in order.
    pub(crate) fn lines(&self, name: &'static [u8]) -> impl Iterator<Item = &'a [u8]> + Clone + '_ {
        self.fields
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    /// The first value of field `name`.
    pub(crate) fn field(&self, name: &'static [u8]) -> Option<&'a [u8]> {
        self.lines(name).next()
    }

    /// Who the client is, and whether it came over TLS.
    pub(crate) fn client(&self, peer: &Peer, trust: &Trust) -> (IpAddr, bool) {
        if !peer.trusted {
            return (peer.ip, peer.tls.is_some());
        }
        let client = fields::client_address(
            peer.ip,
            self.lines(b"x-forwarded-for"),
            self.lines(b"forwarded"),
            |ip| trust.trusts(ip),
        );
        let https = peer.tls.is_some()
            || fields::forwarded_https(self.lines(b"x-forwarded-proto")).unwrap_or(false);
        (client, https)
    }
}

/// Forwarding fields the edge owns: a client's copies never reach an origin
/// unless the client is a trusted proxy (or the site allows one by name).
/// Origins trust these from their proxy (nginx `real_ip_header`, Django
/// `USE_X_FORWARDED_HOST`, IIS URL rewrite).
const CLIENT_FORBIDDEN: [&[u8]; 12] = [
    b"x-real-ip",
    b"true-client-ip",
    b"x-client-ip",
    b"cf-connecting-ip",
    b"fastly-client-ip",
    b"x-cluster-client-ip",
    b"x-forwarded-host",
    b"x-forwarded-port",
    b"x-forwarded-prefix",
    b"x-forwarded-server",
    b"x-original-url",
    b"x-rewrite-url",
];

/// Names the edge always writes itself.
const EDGE_WRITTEN: [&[u8]; 5] = [
    b"host",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-request-id",
    b"forwarded",
];

fn listed(list: &[&[u8]], name: &[u8]) -> bool {
    list.iter().any(|o| o.eq_ignore_ascii_case(name))
}

/// Whether a client's field `name` is forwarded to the origin.
pub(crate) fn forwarded_field(name: &[u8], trusted_peer: bool, allowed: &[String]) -> bool {
    if name.first() == Some(&b':') || is_hop_by_hop(name) || listed(&EDGE_WRITTEN, name) {
        return false;
    }
    let allowed = || {
        allowed
            .iter()
            .any(|a| a.as_bytes().eq_ignore_ascii_case(name))
    };
    // nginx's `underscores_in_headers off`: `Transfer_Encoding` is
    // `Transfer-Encoding` to some CGI stacks.
    if name.contains(&b'_') {
        return allowed();
    }
    if listed(&CLIENT_FORBIDDEN, name) {
        return trusted_peer || allowed();
    }
    true
}

/// Write the HTTP/1.1 request head for the origin into `out`: the
/// normalised target (`target`, which the cache may have stripped of junk
/// parameters), the routed host, the forwarded fields, and the edge's own
/// `X-Forwarded-For`, `X-Forwarded-Proto`, `X-Request-Id` and framing.
pub(crate) fn write_upstream_head(
    out: &mut Vec<u8>,
    req: &Request<'_>,
    target: &str,
    peer: IpAddr,
    allowed: &[String],
    request_id: &str,
    framing: SendFraming,
) {
    out.extend_from_slice(req.head.method);
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    let _ = write!(crate::proxy::Bytes(out), "{}", req.host);
    out.extend_from_slice(b"\r\n");
    let tokens = fields::connection_tokens(req.head.lines(b"connection"));
    for (n, v) in &req.head.fields {
        if !forwarded_field(n, req.trusted_peer, allowed) || listed(&tokens, n) {
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(v);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    let mut chain = false;
    if req.trusted_peer {
        for v in req.head.lines(b"x-forwarded-for") {
            let v = v.trim_ascii();
            if !v.is_empty() {
                if chain {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(v);
                chain = true;
            }
        }
    }
    if chain {
        out.extend_from_slice(b", ");
        crate::proxy::push_ip(out, peer);
    } else {
        crate::proxy::push_ip(out, req.client);
    }
    out.extend_from_slice(b"\r\nx-forwarded-proto: ");
    out.extend_from_slice(if req.https { b"https" } else { b"http" });
    out.extend_from_slice(b"\r\nx-request-id: ");
    out.extend_from_slice(request_id.as_bytes());
    out.extend_from_slice(b"\r\n");
    match framing {
        SendFraming::None => {
            if !matches!(req.head.method, b"GET" | b"HEAD" | b"OPTIONS" | b"DELETE") {
                out.extend_from_slice(b"content-length: 0\r\n");
            }
        }
        SendFraming::Length(n) => {
            let _ = write!(crate::proxy::Bytes(out), "content-length: {n}\r\n");
        }
        SendFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if req.head.websocket {
        out.extend_from_slice(b"connection: upgrade\r\nupgrade: websocket\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(fields: Vec<(&'a [u8], &'a [u8])>, trusted: bool) -> Request<'a> {
        Request {
            head: Head {
                method: b"POST",
                target: b"/x/../y",
                host: levee_http::host::parse(b"a.test"),
                fields,
                proto: "http/1.1",
                body: SendFraming::Chunked,
                declared_len: None,
                keep_alive: true,
                websocket: false,
                h2_fingerprint: None,
            },
            target: levee_http::target::normalize(b"/x/../y").unwrap(),
            host: levee_http::host::parse(b"A.test:8080").unwrap(),
            client: "192.0.2.1".parse().unwrap(),
            https: false,
            trusted_peer: trusted,
        }
    }

    #[test]
    fn upstream_head_drops_hop_by_hop_and_spoofed_fields() {
        let r = request(
            vec![
                (b"Host", b"a.test:evil"),
                (b"Connection", b"keep-alive, X-Secret"),
                (b"X-Secret", b"1"),
                (b"X-Forwarded-For", b"6.6.6.6"),
                (b"X-Real-IP", b"127.0.0.1"),
                (b"X-Original-URL", b"/admin"),
                (b"Transfer_Encoding", b"chunked"),
                (b"Accept", b"*/*"),
                (b"Transfer-Encoding", b"chunked"),
            ],
            false,
        );
        let mut out = Vec::new();
        let peer = "192.0.2.1".parse().unwrap();
        write_upstream_head(
            &mut out,
            &r,
            r.target.as_str(),
            peer,
            &[],
            "abc",
            SendFraming::Chunked,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /y HTTP/1.1\r\nhost: a.test:8080\r\nAccept: */*\r\nx-forwarded-for: 192.0.2.1\r\nx-forwarded-proto: http\r\nx-request-id: abc\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let mut out = Vec::new();
        write_upstream_head(
            &mut out,
            &r,
            "/y",
            peer,
            &["x-real-ip".to_string()],
            "abc",
            SendFraming::Chunked,
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("X-Real-IP: 127.0.0.1\r\n"));
    }

    #[test]
    fn a_trusted_proxy_keeps_its_chain_on_every_line() {
        let r = request(
            vec![
                (b"X-Forwarded-For", b"6.6.6.6"),
                (b"X-Forwarded-For", b"198.51.100.7"),
                (b"X-Real-IP", b"198.51.100.7"),
            ],
            true,
        );
        let mut out = Vec::new();
        write_upstream_head(
            &mut out,
            &r,
            "/y",
            "10.0.0.1".parse().unwrap(),
            &[],
            "id",
            SendFraming::None,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(
            s.contains("x-forwarded-for: 6.6.6.6, 198.51.100.7, 10.0.0.1\r\n"),
            "{s}"
        );
        assert!(s.contains("X-Real-IP: 198.51.100.7\r\n"));
        assert!(s.contains("content-length: 0\r\n"));
    }
}
