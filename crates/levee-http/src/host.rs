//! The request's host (`Host` field, HTTP/2 `:authority`, or an absolute-form
//! target), parsed strictly: a DNS name, an IPv4 address or a bracketed IPv6
//! address, lower-cased, without a trailing dot, and an optional port of
//! digits only. No userinfo, no second colon, no other bytes. The edge routes
//! on [`Host::name`] and forwards [`Host::authority`], so the origin sees the
//! value that was routed on, never the client's raw bytes.

use std::fmt;
use std::net::Ipv6Addr;

/// Why a host was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("empty host")]
    Empty,
    #[error("host longer than 255 bytes")]
    TooLong,
    #[error("invalid byte in host")]
    BadByte,
    #[error("empty label in host name")]
    EmptyLabel,
    #[error("invalid IPv6 literal")]
    BadIpv6,
    #[error("invalid port")]
    BadPort,
}

/// A valid host, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    name: String,
    port: Option<u16>,
}

impl Host {
    /// The name to route on: lower case, no trailing dot, IPv6 in brackets.
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn port(&self) -> Option<u16> {
        self.port
    }
    /// `name[:port]`, as sent to the origin.
    pub fn authority(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

fn port(p: &[u8]) -> Result<Option<u16>, HostError> {
    if p.is_empty() {
        // `host:` is allowed by RFC 3986 and means the default port.
        return Ok(None);
    }
    if p.len() > 5 || !p.iter().all(u8::is_ascii_digit) {
        return Err(HostError::BadPort);
    }
    let n = p.iter().fold(0u32, |a, &d| a * 10 + u32::from(d - b'0'));
    u16::try_from(n)
        .ok()
        .filter(|&n| n > 0)
        .map(Some)
        .ok_or(HostError::BadPort)
}

/// Parse `host[:port]`.
pub fn parse(raw: &[u8]) -> Result<Host, HostError> {
    if raw.is_empty() {
        return Err(HostError::Empty);
    }
    if raw.len() > 255 {
        return Err(HostError::TooLong);
    }
    if raw[0] == b'[' {
        let end = raw
            .iter()
            .position(|&b| b == b']')
            .ok_or(HostError::BadIpv6)?;
        let inner = std::str::from_utf8(&raw[1..end]).map_err(|_| HostError::BadIpv6)?;
        let ip: Ipv6Addr = inner.parse().map_err(|_| HostError::BadIpv6)?;
        let port = match &raw[end + 1..] {
            [] => None,
            [b':', p @ ..] => port(p)?,
            _ => return Err(HostError::BadPort),
        };
        return Ok(Host {
            name: format!("[{ip}]"),
            port,
        });
    }
    let (name, port) = match raw.iter().position(|&b| b == b':') {
        Some(i) => (&raw[..i], port(&raw[i + 1..])?),
        None => (raw, None),
    };
    let name = name.strip_suffix(b".").unwrap_or(name);
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if !name
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    {
        return Err(HostError::BadByte);
    }
    // Every label has a byte: no `.a`, `a..b` or `..`.
    if name.split(|&b| b == b'.').any(<[u8]>::is_empty) {
        return Err(HostError::EmptyLabel);
    }
    // ASCII by the check above, so this never fails.
    let name = String::from_utf8(name.to_ascii_lowercase()).map_err(|_| HostError::BadByte)?;
    Ok(Host { name, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<String, HostError> {
        parse(s.as_bytes()).map(|h| h.to_string())
    }

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(p("Example.ORG").unwrap(), "example.org");
        assert_eq!(p("a.example.:8080").unwrap(), "a.example:8080");
        assert_eq!(p("a.example:").unwrap(), "a.example");
        assert_eq!(p("10.0.0.1:80").unwrap(), "10.0.0.1:80");
        assert_eq!(p("[::1]:8443").unwrap(), "[::1]:8443");
        assert_eq!(p("[2001:DB8::1]").unwrap(), "[2001:db8::1]");
        assert_eq!(parse(b"A.example:81").unwrap().name(), "a.example");
    }

    #[test]
    fn junk_is_refused() {
        assert_eq!(p("a.example:evil.com:80"), Err(HostError::BadPort));
        assert_eq!(p("a.example:@evil.com"), Err(HostError::BadPort));
        assert_eq!(p("user@a.example"), Err(HostError::BadByte));
        assert_eq!(p("a.example:1234x"), Err(HostError::BadPort));
        assert_eq!(p("a.example:99999"), Err(HostError::BadPort));
        assert_eq!(p("a.example:0"), Err(HostError::BadPort));
        assert_eq!(p("a.example/\"><script>"), Err(HostError::BadByte));
        assert_eq!(p("a b"), Err(HostError::BadByte));
        assert_eq!(p(""), Err(HostError::Empty));
        assert_eq!(p(":80"), Err(HostError::Empty));
        assert_eq!(p("."), Err(HostError::Empty));
        assert_eq!(p(".."), Err(HostError::EmptyLabel), "found by the fuzzer");
        assert_eq!(p("a..b"), Err(HostError::EmptyLabel));
        assert_eq!(p(".a"), Err(HostError::EmptyLabel));
        assert_eq!(p("[::1"), Err(HostError::BadIpv6));
        assert_eq!(p("[zz]"), Err(HostError::BadIpv6));
        assert_eq!(p("[::1]x"), Err(HostError::BadPort));
        assert_eq!(p(&"a".repeat(256)), Err(HostError::TooLong));
    }
}
