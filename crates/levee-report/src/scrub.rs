//! Client addresses out of the report's text: every IPv4 or IPv6 address
//! (with or without a `/len`) in any string becomes its keyed pseudonym,
//! unless the report is asked for raw addresses. Scanning the text, not
//! chosen fields, means an address in a rule's value, a log sample or an
//! event cannot slip through.

use crate::Addresses;
use std::net::IpAddr;

pub(crate) struct Scrubber<'a> {
    key: Option<&'a levee_privacy::Pseudonymizer>,
}

fn addr_char(c: char) -> bool {
    c.is_ascii_hexdigit() || c == '.' || c == ':'
}

impl<'a> Scrubber<'a> {
    pub(crate) fn new(a: &'a Addresses) -> Scrubber<'a> {
        Scrubber {
            key: match a {
                Addresses::Raw => None,
                Addresses::Pseudonymised { key, .. } => Some(key),
            },
        }
    }

    /// `t` with every address replaced by its pseudonym.
    pub(crate) fn text(&self, t: &str) -> String {
        let Some(key) = self.key else {
            return t.to_string();
        };
        let mut out = String::with_capacity(t.len());
        let mut rest = t;
        while let Some(start) = rest.find(addr_char) {
            out.push_str(&rest[..start]);
            let run_len = rest[start..]
                .find(|c: char| !addr_char(c))
                .unwrap_or(rest.len() - start);
            let run = &rest[start..start + run_len];
            // A sentence's full stop or a label's colon is not part of it.
            let mut core = run.trim_end_matches(['.', ':']);
            // `192.0.2.1:443`: the address, then its port.
            if core.parse::<IpAddr>().is_err() && core.contains('.') {
                if let Some((a, _)) = core.rsplit_once(':') {
                    if a.parse::<std::net::Ipv4Addr>().is_ok() {
                        core = a;
                    }
                }
            }
            // A letter or digit just before means a word (`v4.1.2.3`), not an address.
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
                    out.push_str(&key.ip(ip));
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
    fn every_address_in_text_is_pseudonymised_and_other_words_kept() {
        let a = Addresses::Pseudonymised {
            key: levee_privacy::Pseudonymizer::new(b"k", false),
            same_as_hunt: true,
        };
        let s = Scrubber::new(&a);
        let p = levee_privacy::Pseudonymizer::new(b"k", false);
        let want = format!(
            "blocked {}/24 and {}. Chrome/52.0.2743.116 at 21:36:10, cafe, v1.2.3.4",
            p.addr("192.0.2.0"),
            p.addr("2001:db8::1")
        );
        assert_eq!(
            s.text("blocked 192.0.2.0/24 and 2001:db8::1. Chrome/52.0.2743.116 at 21:36:10, cafe, v1.2.3.4"),
            want
        );
        assert!(!s
            .text("\"GET / HTTP/1.1\" from 10.1.2.3:443")
            .contains("10.1.2.3"));
        let raw = Addresses::Raw;
        assert_eq!(Scrubber::new(&raw).text("192.0.2.1"), "192.0.2.1");
    }
}
