//! Client addresses out of the report's text: every IPv4 or IPv6 address
//! (with or without a `/len`) in any string becomes its keyed pseudonym,
//! unless the report is asked for raw addresses. Scanning the text, not
//! chosen fields, means an address in a rule's value, a log sample or an
//! event cannot slip through.

use crate::Addresses;

pub(crate) struct Scrubber<'a> {
    key: Option<&'a levee_privacy::Pseudonymizer>,
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

    /// `t` with every address replaced by its pseudonym
    /// (`levee_privacy::Pseudonymizer::text`), or as it is for a raw report.
    pub(crate) fn text(&self, t: &str) -> String {
        match self.key {
            Some(key) => key.text(t),
            None => t.to_string(),
        }
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
