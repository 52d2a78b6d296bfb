//! Field values the edge reads from attacker bytes, each parsed in one place:
//! the client address behind trusted proxies (`X-Forwarded-For` across all
//! its field lines, `Forwarded`), cookies, `Connection` tokens, a strict
//! `Content-Length`, and `Cache-Control` directives.
//!
//! Every function takes *all* field lines of a name, in order, so that a
//! second line can never hide behind the first (RFC 9110 §5.3).

use std::net::{IpAddr, Ipv6Addr};

fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// One address of a forwarding chain: `ip`, `[v6]`, `[v6]:port` or `v4:port`.
fn node(s: &str) -> Option<IpAddr> {
    let s = s.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (inner, after) = rest.split_once(']')?;
        if !(after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        {
            return None;
        }
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|v6| canonical(IpAddr::V6(v6)));
    }
    let (ip, port) = s.split_once(':')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    ip.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The addresses of a forwarding chain, oldest first, from every
/// `X-Forwarded-For` line joined in order; `None` for an element that is not
/// an address (the walk stops there).
fn xff_nodes<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for line in lines {
        let Ok(s) = std::str::from_utf8(line) else {
            out.push(None);
            continue;
        };
        out.extend(s.split(',').filter(|p| !p.trim().is_empty()).map(node));
    }
    out
}

fn forwarded_nodes<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<Option<IpAddr>> {
    let mut out = Vec::new();
    for line in lines {
        let Ok(s) = std::str::from_utf8(line) else {
            out.push(None);
            continue;
        };
        for element in s.split(',').filter(|e| !e.trim().is_empty()) {
            let f = element.split(';').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then_some(v)
            });
            out.push(f.and_then(node));
        }
    }
    out
}

/// The client address of a request: the socket (or PROXY) peer, unless the
/// peer is a trusted proxy; then the right-most address of the forwarding
/// chain that is not itself trusted. The chain is `X-Forwarded-For` (all its
/// lines), or `Forwarded`'s `for=` when there is no `X-Forwarded-For`. The
/// walk stops at the first element that is not an address.
pub fn client_address<'a>(
    peer: IpAddr,
    xff: impl Iterator<Item = &'a [u8]>,
    forwarded: impl Iterator<Item = &'a [u8]>,
    trusted: impl Fn(IpAddr) -> bool,
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted(peer) {
        return peer;
    }
    let mut chain = xff_nodes(xff);
    if chain.is_empty() {
        chain = forwarded_nodes(forwarded);
    }
    let mut client = peer;
    for n in chain.iter().rev() {
        match n {
            Some(ip) => {
                client = *ip;
                if !trusted(client) {
                    return client;
                }
            }
            None => return client,
        }
    }
    client
}

/// The scheme a trusted TLS-terminating proxy reports in its last
/// `X-Forwarded-Proto` value: `Some(true)` for https, `Some(false)` for http.
pub fn forwarded_https<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Option<bool> {
    let mut last = None;
    for line in lines {
        for v in line.split(|&b| b == b',') {
            let v = v.trim_ascii();
            if v.eq_ignore_ascii_case(b"https") {
                last = Some(true);
            } else if v.eq_ignore_ascii_case(b"http") {
                last = Some(false);
            } else if !v.is_empty() {
                last = None;
            }
        }
    }
    last
}

/// Every `name=value` pair of every `Cookie` line.
pub fn cookies<'a>(
    lines: impl Iterator<Item = &'a [u8]>,
) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
    lines.flat_map(|l| l.split(|&b| b == b';')).filter_map(|p| {
        let p = p.trim_ascii();
        if p.is_empty() {
            return None;
        }
        let i = p.iter().position(|&b| b == b'=').unwrap_or(p.len());
        Some((
            p[..i].trim_ascii(),
            p.get(i + 1..).unwrap_or(b"").trim_ascii(),
        ))
    })
}

/// The value of the first cookie called exactly `name`.
pub fn cookie_value<'a>(lines: impl Iterator<Item = &'a [u8]>, name: &str) -> Option<&'a [u8]> {
    cookies(lines)
        .find(|(n, _)| *n == name.as_bytes())
        .map(|(_, v)| v)
}

/// Whether every cookie sent is called exactly `name` (or there are none).
pub fn only_cookie<'a>(lines: impl Iterator<Item = &'a [u8]>, name: &str) -> bool {
    cookies(lines).all(|(n, _)| n == name.as_bytes())
}

/// Field names listed in `Connection` values (hop-by-hop, RFC 9110 §7.6.1).
pub fn connection_tokens<'a>(lines: impl Iterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    lines
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
        .collect()
}

/// A `Content-Length` value: 1 to 18 digits and nothing else.
pub fn content_length(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0')))
}

/// The content codings a client accepts among those origins commonly use,
/// as a bit set (1 gzip, 2 br, 4 zstd, 8 deflate): the part of
/// `Accept-Encoding` a cached `Vary: Accept-Encoding` response depends on.
/// A coding with `q=0` is not accepted.
pub fn accepted_encodings<'a>(lines: impl Iterator<Item = &'a [u8]>) -> u8 {
    const CODINGS: [(&[u8], u8); 4] = [(b"gzip", 1), (b"br", 2), (b"zstd", 4), (b"deflate", 8)];
    let mut mask = 0;
    for item in lines.flat_map(|v| v.split(|&b| b == b',')) {
        let mut parts = item.split(|&b| b == b';');
        let name = parts.next().unwrap_or(b"").trim_ascii();
        let refused = parts.any(|p| {
            let p = p.trim_ascii();
            p.len() >= 2
                && p[..2].eq_ignore_ascii_case(b"q=")
                && p[2..].iter().all(|&b| b == b'0' || b == b'.')
        });
        if refused {
            continue;
        }
        for (c, bit) in CODINGS {
            if name.eq_ignore_ascii_case(c) || name == b"*" {
                mask |= bit;
            }
        }
    }
    mask
}

/// The `Cache-Control` directives a shared cache acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    pub private: bool,
    /// Seconds, saturated at `u32::MAX`.
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
}

impl CacheControl {
    /// Parse every `Cache-Control` line. A malformed age counts as 0 (not
    /// fresh), as RFC 9111 §4.2.1 asks of a cache.
    pub fn parse<'a>(lines: impl Iterator<Item = &'a [u8]>) -> CacheControl {
        let mut c = CacheControl::default();
        for d in lines.flat_map(|v| v.split(|&b| b == b',')) {
            let d = d.trim_ascii();
            let (name, value) = match d.iter().position(|&b| b == b'=') {
                Some(i) => (d[..i].trim_ascii(), Some(d[i + 1..].trim_ascii())),
                None => (d, None),
            };
            let age = || {
                let v = value.unwrap_or(b"");
                let v = v
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(v);
                if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
                    return 0;
                }
                v.iter().fold(0u64, |a, &d| {
                    (a * 10 + u64::from(d - b'0')).min(u64::from(u32::MAX))
                })
            };
            if name.eq_ignore_ascii_case(b"no-store") {
                c.no_store = true;
            } else if name.eq_ignore_ascii_case(b"no-cache") {
                c.no_cache = true;
            } else if name.eq_ignore_ascii_case(b"private") {
                c.private = true;
            } else if name.eq_ignore_ascii_case(b"max-age") {
                c.max_age = Some(age());
            } else if name.eq_ignore_ascii_case(b"s-maxage") {
                c.s_maxage = Some(age());
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted10(i: IpAddr) -> bool {
        matches!(i, IpAddr::V4(v) if v.octets()[0] == 10)
    }

    #[test]
    fn every_xff_line_counts() {
        let lines: [&[u8]; 2] = [b"10.1.2.3", b"198.51.100.7"];
        // HAProxy appends a new line: the client's own line comes first and must not win.
        let c = client_address(
            ip("10.0.0.1"),
            lines.iter().copied(),
            std::iter::empty(),
            trusted10,
        );
        assert_eq!(c, ip("198.51.100.7"));
        let lines: [&[u8]; 1] = [b"6.6.6.6, 1.2.3.4, 10.2.2.2"];
        let c = client_address(
            ip("10.0.0.1"),
            lines.iter().copied(),
            std::iter::empty(),
            trusted10,
        );
        assert_eq!(c, ip("1.2.3.4"));
        // Not from a trusted peer: ignored.
        let c = client_address(
            ip("192.0.2.9"),
            lines.iter().copied(),
            std::iter::empty(),
            trusted10,
        );
        assert_eq!(c, ip("192.0.2.9"));
        // Garbage stops the walk at the last good hop.
        let lines: [&[u8]; 1] = [b"1.1.1.1, junk"];
        let c = client_address(
            ip("10.0.0.1"),
            lines.iter().copied(),
            std::iter::empty(),
            trusted10,
        );
        assert_eq!(c, ip("10.0.0.1"));
        let lines: [&[u8]; 1] = [b"[2001:db8::1]:443, 192.0.2.1:80"];
        let c = client_address(
            ip("10.0.0.1"),
            lines.iter().copied(),
            std::iter::empty(),
            trusted10,
        );
        assert_eq!(c, ip("192.0.2.1"));
        let lines: [&[u8]; 1] = [b"::ffff:192.0.2.5"];
        let c = client_address(
            ip("10.0.0.1"),
            lines.iter().copied(),
            std::iter::empty(),
            trusted10,
        );
        assert_eq!(c, ip("192.0.2.5"));
    }

    #[test]
    fn forwarded_is_read_without_xff() {
        let f: [&[u8]; 2] = [
            b"for=192.0.2.60;proto=http;by=203.0.113.43",
            b"For=\"[2001:db8:cafe::17]:4711\"",
        ];
        let c = client_address(
            ip("10.0.0.1"),
            std::iter::empty(),
            f.iter().copied(),
            trusted10,
        );
        assert_eq!(c, ip("2001:db8:cafe::17"));
        let f: [&[u8]; 1] = [b"for=unknown"];
        let c = client_address(
            ip("10.0.0.1"),
            std::iter::empty(),
            f.iter().copied(),
            trusted10,
        );
        assert_eq!(c, ip("10.0.0.1"));
    }

    #[test]
    fn scheme_cookies_tokens_lengths() {
        let l: [&[u8]; 2] = [b"http", b"https"];
        assert_eq!(forwarded_https(l.iter().copied()), Some(true));
        assert_eq!(forwarded_https(std::iter::empty()), None);
        let c: [&[u8]; 2] = [b"a=1; levee_clearance=XYZ", b"b=2"];
        assert_eq!(
            cookie_value(c.iter().copied(), "levee_clearance"),
            Some(&b"XYZ"[..])
        );
        assert_eq!(cookie_value(c.iter().copied(), "levee"), None);
        assert!(!only_cookie(c.iter().copied(), "levee_clearance"));
        let c: [&[u8]; 1] = [b"levee_clearance=1; levee_clearance_x=2"];
        assert!(!only_cookie(c.iter().copied(), "levee_clearance"));
        let c: [&[u8]; 1] = [b" levee_clearance=1 ;"];
        assert!(only_cookie(c.iter().copied(), "levee_clearance"));
        let t: [&[u8]; 2] = [b"keep-alive, X-Secret", b" ,close"];
        assert_eq!(
            connection_tokens(t.iter().copied()),
            vec![&b"keep-alive"[..], b"X-Secret", b"close"]
        );
        assert_eq!(content_length(b"42"), Some(42));
        assert_eq!(content_length(b"+4"), None);
        assert_eq!(content_length(b""), None);
        assert_eq!(content_length(b"1234567890123456789"), None);
    }

    #[test]
    fn encodings() {
        let l: [&[u8]; 2] = [b"gzip, deflate", b"br;q=1.0, zstd;q=0"];
        assert_eq!(accepted_encodings(l.iter().copied()), 1 | 8 | 2);
        assert_eq!(accepted_encodings(std::iter::empty()), 0);
    }

    #[test]
    fn cache_control_directives() {
        let l: [&[u8]; 2] = [b"public, MAX-AGE=60", b"s-maxage=\"5\""];
        let c = CacheControl::parse(l.iter().copied());
        assert_eq!(
            (c.max_age, c.s_maxage, c.no_store),
            (Some(60), Some(5), false)
        );
        let l: [&[u8]; 1] = [b"max-age=99999999999999999999999, no-store, private"];
        let c = CacheControl::parse(l.iter().copied());
        assert_eq!(c.max_age, Some(u64::from(u32::MAX)));
        assert!(c.no_store && c.private);
        let l: [&[u8]; 1] = [b"max-age=abc"];
        assert_eq!(CacheControl::parse(l.iter().copied()).max_age, Some(0));
    }
}
