//! PROXY protocol v1 (text) and v2 (binary) headers, as sent by load balancers
//! in front of the edge. The edge only reads them from trusted peers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a PROXY header was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("malformed PROXY v1 header")]
    BadV1,
    #[error("malformed PROXY v2 header")]
    BadV2,
}

/// A complete header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The original client, or `None` for `UNKNOWN` / `LOCAL` (use the socket peer).
    pub source: Option<SocketAddr>,
    /// Bytes the header occupied.
    pub len: usize,
}

const V2_SIG: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
const V1_MAX: usize = 107;
/// The largest v2 header accepted (addresses plus TLVs).
const V2_MAX: usize = 16 + 536;

/// Parse a header from the start of `buf`. `Ok(None)`: need more bytes.
pub fn parse(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let n = buf.len().min(12);
    if buf[..n] == V2_SIG[..n] {
        return if buf.len() < 12 {
            Ok(None)
        } else {
            parse_v2(buf)
        };
    }
    let n = buf.len().min(6);
    if buf[..n] == b"PROXY "[..n] {
        return if buf.len() < 6 {
            Ok(None)
        } else {
            parse_v1(buf)
        };
    }
    Err(ProxyError::NotProxy)
}

fn parse_v1(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    let end = match buf.windows(2).take(V1_MAX).position(|w| w == b"\r\n") {
        Some(e) => e,
        None if buf.len() >= V1_MAX => return Err(ProxyError::BadV1),
        None => return Ok(None),
    };
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| ProxyError::BadV1)?;
    let parts: Vec<&str> = line.split(' ').collect();
    let len = end + 2;
    match parts.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Some(ProxyHeader { source: None, len })),
        ["PROXY", fam @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let src: IpAddr = src.parse().map_err(|_| ProxyError::BadV1)?;
            let dst: IpAddr = dst.parse().map_err(|_| ProxyError::BadV1)?;
            let v4 = *fam == "TCP4";
            if src.is_ipv4() != v4 || dst.is_ipv4() != v4 {
                return Err(ProxyError::BadV1);
            }
            let sport = parse_port(sport)?;
            parse_port(dport)?;
            Ok(Some(ProxyHeader {
                source: Some(SocketAddr::new(src, sport)),
                len,
            }))
        }
        _ => Err(ProxyError::BadV1),
    }
}

fn parse_port(s: &str) -> Result<u16, ProxyError> {
    if s.is_empty() || s.len() > 5 || (s.len() > 1 && s.starts_with('0')) {
        return Err(ProxyError::BadV1);
    }
    s.parse().map_err(|_| ProxyError::BadV1)
}

fn parse_v2(buf: &[u8]) -> Result<Option<ProxyHeader>, ProxyError> {
    if buf.len() < 16 {
        return Ok(None);
    }
    let ver_cmd = buf[12];
    let fam = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if ver_cmd >> 4 != 2 || 16 + len > V2_MAX {
        return Err(ProxyError::BadV2);
    }
    if buf.len() < 16 + len {
        return Ok(None);
    }
    let body = &buf[16..16 + len];
    let total = 16 + len;
    match ver_cmd & 0x0f {
        0 => {
            return Ok(Some(ProxyHeader {
                source: None,
                len: total,
            }))
        }
        1 => {}
        _ => return Err(ProxyError::BadV2),
    }
    let source = match fam {
        0x11 | 0x12 => {
            if body.len() < 12 {
                return Err(ProxyError::BadV2);
            }
            let ip = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
            let port = u16::from_be_bytes([body[8], body[9]]);
            Some(SocketAddr::new(IpAddr::V4(ip), port))
        }
        0x21 | 0x22 => {
            if body.len() < 36 {
                return Err(ProxyError::BadV2);
            }
            let mut a = [0u8; 16];
            a.copy_from_slice(&body[..16]);
            let port = u16::from_be_bytes([body[32], body[33]]);
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(a)), port))
        }
        0x00 => None,
        _ => return Err(ProxyError::BadV2),
    };
    Ok(Some(ProxyHeader { source, len: total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1() {
        let h = b"PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\nGET /";
        let p = parse(h).unwrap().unwrap();
        assert_eq!(p.source, Some("192.0.2.1:56324".parse().unwrap()));
        assert_eq!(&h[p.len..], b"GET /");
        assert_eq!(parse(b"PROXY TCP4 192.0.2.1"), Ok(None));
        assert_eq!(parse(b"PRO"), Ok(None));
        assert_eq!(
            parse(b"PROXY TCP4 ::1 192.0.2.1 1 2\r\n"),
            Err(ProxyError::BadV1)
        );
        assert_eq!(
            parse(b"PROXY TCP4 1.2.3.4 1.2.3.4 99999 2\r\n"),
            Err(ProxyError::BadV1)
        );
        assert_eq!(parse(b"PROXY UNKNOWN\r\n").unwrap().unwrap().source, None);
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(&[b'P'; 200]), Err(ProxyError::NotProxy));
        let long = format!("PROXY {}", "1".repeat(200));
        assert_eq!(parse(long.as_bytes()), Err(ProxyError::BadV1));
    }

    #[test]
    fn v2() {
        let mut h = V2_SIG.to_vec();
        h.extend_from_slice(&[
            0x21, 0x11, 0, 12, 10, 0, 0, 7, 10, 0, 0, 1, 0x1f, 0x90, 0, 80,
        ]);
        h.extend_from_slice(b"rest");
        let p = parse(&h).unwrap().unwrap();
        assert_eq!(p.source, Some("10.0.0.7:8080".parse().unwrap()));
        assert_eq!(&h[p.len..], b"rest");
        assert_eq!(parse(&h[..20]), Ok(None));
        let mut bad = h.clone();
        bad[12] = 0x31;
        assert_eq!(parse(&bad), Err(ProxyError::BadV2));
        let mut local = V2_SIG.to_vec();
        local.extend_from_slice(&[0x20, 0x00, 0, 0]);
        assert_eq!(parse(&local).unwrap().unwrap().source, None);
        let mut short = V2_SIG.to_vec();
        short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
        assert_eq!(parse(&short), Err(ProxyError::BadV2));
    }
}
