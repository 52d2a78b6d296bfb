//! Personal data handled lawfully, as pure logic: keyed pseudonyms of client
//! addresses (`Pseudonymizer`), and the hash-chained ledger that records
//! every key destruction, deletion and hold (`ledger`).
//!
//! Why keyed: a plain hash of an IPv4 address is no pseudonymisation (all
//! 2^32 addresses can be hashed in minutes); an HMAC-SHA-256 under a secret
//! key cannot be reversed without the key. Within one key's period the same
//! client keeps the same pseudonym, so enumerations and bulk downloads stay
//! visible to `levee hunt`; once the key is destroyed, nothing Levee keeps
//! can link a pseudonym back to an address.
//!
//! What it does not do: read or write files, draw random keys, or read a
//! clock (the edge's key store and the binary do).

pub mod ledger;

use std::net::IpAddr;

/// Length of a pseudonym key, in bytes.
pub const KEY_LEN: usize = 32;

/// Keyed pseudonyms for addresses (HMAC-SHA-256), optionally keeping the
/// /24 (IPv4) or /48 (IPv6) so that networks stay visible.
pub struct Pseudonymizer {
    key: ring::hmac::Key,
    keep_prefix: bool,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("keep_prefix", &self.keep_prefix)
            .finish_non_exhaustive()
    }
}

impl Pseudonymizer {
    pub fn new(key: &[u8], keep_prefix: bool) -> Pseudonymizer {
        Pseudonymizer {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key),
            keep_prefix,
        }
    }

    /// The pseudonym of an address: `anon-` and 12 hex digits of its HMAC,
    /// or the kept prefix, `~` and the digits.
    pub fn ip(&self, ip: IpAddr) -> String {
        let ip = ip.to_canonical();
        let tag = match ip {
            IpAddr::V4(v) => ring::hmac::sign(&self.key, &v.octets()),
            IpAddr::V6(v) => ring::hmac::sign(&self.key, &v.octets()),
        };
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(12);
        for b in &tag.as_ref()[..6] {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 15)]));
        }
        if !self.keep_prefix {
            return format!("anon-{hex}");
        }
        match ip {
            IpAddr::V4(v) => {
                let o = v.octets();
                format!("{}.{}.{}.0/24~{hex}", o[0], o[1], o[2])
            }
            IpAddr::V6(v) => {
                let g = v.segments();
                format!("{:x}:{:x}:{:x}::/48~{hex}", g[0], g[1], g[2])
            }
        }
    }

    /// The pseudonym of an address written as text (other text is returned as it is).
    pub fn addr(&self, s: &str) -> String {
        match s.trim().parse::<IpAddr>() {
            Ok(ip) => self.ip(ip),
            Err(_) => s.to_string(),
        }
    }

    /// `t` with every IPv4 or IPv6 address in it (alone, with a `/len`, or
    /// `192.0.2.1:443` with a port) replaced by its pseudonym; a sentence's
    /// full stop, a label's colon and other words are kept. Text is scanned
    /// whole, so that an address inside a log line, a rule or an event
    /// cannot slip through. A run glued to a word (`v1.2.3.4`) is a word.
    pub fn text(&self, t: &str) -> String {
        fn addr_char(c: char) -> bool {
            c.is_ascii_hexdigit() || c == '.' || c == ':'
        }
        let mut out = String::with_capacity(t.len());
        let mut rest = t;
        while let Some(start) = rest.find(addr_char) {
            out.push_str(&rest[..start]);
            let run_len = rest[start..]
                .find(|c: char| !addr_char(c))
                .unwrap_or(rest.len() - start);
            let run = &rest[start..start + run_len];
            let mut core = run.trim_end_matches(['.', ':']);
            if core.parse::<IpAddr>().is_err() && core.contains('.') {
                if let Some((a, _)) = core.rsplit_once(':') {
                    if a.parse::<std::net::Ipv4Addr>().is_ok() {
                        core = a;
                    }
                }
            }
            let glued = out
                .chars()
                .last()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            match core.parse::<IpAddr>() {
                Ok(ip)
                    if !glued
                        && !ip.is_unspecified()
                        && (core.contains('.') || core.matches(':').count() >= 2) =>
                {
                    out.push_str(&self.ip(ip));
                    out.push_str(&run[core.len()..]);
                }
                _ => out.push_str(run),
            }
            rest = &rest[start + run_len..];
        }
        out.push_str(rest);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_stable_and_keep_prefixes_when_asked() {
        let p = Pseudonymizer::new(b"secret", false);
        let a = p.addr("192.0.2.7");
        assert!(a.starts_with("anon-") && a.len() == 17, "{a}");
        assert_eq!(a, p.addr("192.0.2.7"));
        assert_eq!(a, p.addr("::ffff:192.0.2.7"), "one client, one pseudonym");
        assert_ne!(a, Pseudonymizer::new(b"other", false).addr("192.0.2.7"));
        assert_eq!(p.addr("not an ip"), "not an ip");
        let k = Pseudonymizer::new(b"secret", true);
        assert!(k.addr("192.0.2.7").starts_with("192.0.2.0/24~"));
        assert!(k.addr("2001:db8:1:2::5").starts_with("2001:db8:1::/48~"));
        assert!(!format!("{p:?}").contains("secret"));
    }

    #[test]
    fn every_address_in_text_is_pseudonymised_and_other_words_kept() {
        let p = Pseudonymizer::new(b"k", false);
        let want = format!(
            "blocked {}/24 and {}. Chrome/52.0.2743.116 at 21:36:10, cafe, v1.2.3.4",
            p.addr("192.0.2.0"),
            p.addr("2001:db8::1")
        );
        assert_eq!(
            p.text("blocked 192.0.2.0/24 and 2001:db8::1. Chrome/52.0.2743.116 at 21:36:10, cafe, v1.2.3.4"),
            want
        );
        assert_eq!(
            p.text("from 10.1.2.3:443"),
            format!("from {}:443", p.addr("10.1.2.3"))
        );
    }
}
