//! Small helpers of the edge's own responses: request ids, addresses as
//! text, the plain-text error bodies, and the raw HTTP/1 answer of the admin
//! listener and of refused heads.

use levee_http::h1::reason_phrase;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A unique, unguessable-enough request id: a per-process random prefix and a counter.
pub(crate) fn request_id() -> String {
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

/// Append an address as text; IPv4 without the formatting machinery (hot path).
pub(crate) fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
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
pub(crate) struct Bytes<'a>(pub(crate) &'a mut Vec<u8>);
impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The edge's own short response (errors, 421, drill opt-in).
pub(crate) fn own_response(
    status: u16,
    body: &str,
    close: bool,
    retry_after: Option<u32>,
) -> Vec<u8> {
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

/// The body text of an edge error: short, and names the reason.
pub(crate) fn error_text(status: u16, reason: &str) -> String {
    format!("{status} {}: {reason} (levee)\n", reason_phrase(status))
}

#[cfg(test)]
mod tests {
    use super::*;

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
