//! The TLS ClientHello, read from the first record(s) of a connection before
//! they are handed to the TLS library, and its JA4 fingerprint (FoxIO's JA4,
//! the TLS-client part of JA4+). rustls does not expose the order of
//! extensions, so the edge parses the raw bytes itself and replays them.
//!
//! Only what JA4 needs is extracted. Attacker bytes: every length is checked,
//! nothing panics, and the input read is bounded (`MAX_HELLO`).

/// The most bytes read looking for a complete ClientHello.
pub const MAX_HELLO: usize = 16 * 1024 + 5;

/// What the first bytes of a connection turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Hello {
    /// Need more bytes.
    Partial,
    /// Not a TLS ClientHello (or malformed): let the TLS library refuse it.
    Invalid(&'static str),
    Complete(ClientHello),
}

/// The parts of a ClientHello that JA4 uses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub ciphers: Vec<u16>,
    /// Extension types in the order sent.
    pub extensions: Vec<u16>,
    pub sni: bool,
    pub alpn: Vec<Vec<u8>>,
    pub signature_algorithms: Vec<u16>,
    pub supported_versions: Vec<u16>,
}

fn is_grease(v: u16) -> bool {
    (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff)
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn u16s(b: &[u8]) -> Vec<u16> {
    b.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// How much of a ClientHello has arrived, read once: [`Progress::ready`]
/// looks only at records it has not seen, so a ClientHello sent a byte per
/// segment costs linear time, and [`parse`] runs once, when it can finish.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    offset: usize,
    payload: usize,
    first: [u8; 4],
    need: Option<usize>,
    done: bool,
}

impl Progress {
    /// Whether [`parse`] of `buf` (which only grows between calls) would
    /// say more than `Partial` now.
    pub fn ready(&mut self, buf: &[u8]) -> bool {
        if self.done || buf.len() >= MAX_HELLO {
            self.done = true;
            return true;
        }
        loop {
            let Some(rest) = buf.get(self.offset..) else {
                self.done = true;
                return true;
            };
            if rest.len() < 5 {
                return false;
            }
            let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
            if rest[0] != 0x16 || rest[1] != 3 || len == 0 || len > 16 * 1024 + 256 {
                self.done = true;
                return true;
            }
            if rest.len() < 5 + len {
                return false;
            }
            let before = self.payload;
            let body = &rest[5..5 + len];
            for (i, &b) in body.iter().enumerate().take(4usize.saturating_sub(before)) {
                self.first[before + i] = b;
            }
            self.payload = before + len;
            self.offset += 5 + len;
            if self.need.is_none() && self.payload >= 4 {
                if self.first[0] != 1 {
                    self.done = true;
                    return true;
                }
                let n = (usize::from(self.first[1]) << 16)
                    | (usize::from(self.first[2]) << 8)
                    | usize::from(self.first[3]);
                self.need = Some(n + 4);
            }
            if self.need.is_some_and(|n| self.payload >= n) {
                self.done = true;
                return true;
            }
        }
    }
}

/// Parse the start of a TLS connection. Handshake messages may span records;
/// at most `MAX_HELLO` bytes are considered.
pub fn parse(input: &[u8]) -> Hello {
    // Reassemble the handshake payload from consecutive handshake records.
    let mut payload: Vec<u8> = Vec::new();
    let mut rest = &input[..input.len().min(MAX_HELLO)];
    let mut need: Option<usize> = None;
    loop {
        if let Some(n) = need {
            if payload.len() >= n {
                break;
            }
        }
        if rest.len() < 5 {
            return if input.len() >= MAX_HELLO {
                Hello::Invalid("ClientHello too large")
            } else {
                Hello::Partial
            };
        }
        if rest[0] != 0x16 {
            return Hello::Invalid("not a TLS handshake record");
        }
        if rest[1] != 3 {
            return Hello::Invalid("not TLS record version 3.x");
        }
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        if len == 0 || len > 16 * 1024 + 256 {
            return Hello::Invalid("bad record length");
        }
        if rest.len() < 5 + len {
            return if input.len() >= MAX_HELLO {
                Hello::Invalid("ClientHello too large")
            } else {
                Hello::Partial
            };
        }
        payload.extend_from_slice(&rest[5..5 + len]);
        rest = &rest[5 + len..];
        if need.is_none() && payload.len() >= 4 {
            if payload[0] != 1 {
                return Hello::Invalid("first handshake message is not a ClientHello");
            }
            let n = (usize::from(payload[1]) << 16)
                | (usize::from(payload[2]) << 8)
                | usize::from(payload[3]);
            need = Some(n + 4);
        }
    }
    let n = need.unwrap_or(0);
    match client_hello(&payload[4..n]) {
        Some(h) => Hello::Complete(h),
        None => Hello::Invalid("malformed ClientHello"),
    }
}

fn client_hello(b: &[u8]) -> Option<ClientHello> {
    let mut r = Reader { b };
    let mut h = ClientHello {
        legacy_version: r.u16()?,
        ..ClientHello::default()
    };
    r.take(32)?; // random
    r.vec8()?; // session id
    h.ciphers = u16s(r.vec16()?);
    r.vec8()?; // compression methods
    if r.b.is_empty() {
        return Some(h);
    }
    let mut ext = Reader { b: r.vec16()? };
    while !ext.b.is_empty() {
        let t = ext.u16()?;
        let data = ext.vec16()?;
        h.extensions.push(t);
        let mut d = Reader { b: data };
        match t {
            0x0000 => h.sni = true,
            0x0010 => {
                let mut list = Reader { b: d.vec16()? };
                while !list.b.is_empty() {
                    h.alpn.push(list.vec8()?.to_vec());
                }
            }
            0x000d => h.signature_algorithms = u16s(d.vec16()?),
            0x002b => h.supported_versions = u16s(d.vec8()?),
            _ => {}
        }
    }
    Some(h)
}

fn hex4(v: u16) -> String {
    format!("{v:04x}")
}

fn hash12(s: &str) -> String {
    if s.is_empty() {
        return "000000000000".into();
    }
    let d = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    d.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}

impl ClientHello {
    /// The JA4 fingerprint, e.g. `t13d1516h2_8daaf6152771_e5627efa2ab1`.
    pub fn ja4(&self) -> String {
        let version = self
            .supported_versions
            .iter()
            .copied()
            .filter(|v| !is_grease(*v))
            .max()
            .unwrap_or(self.legacy_version);
        let v = match version {
            0x0304 => "13",
            0x0303 => "12",
            0x0302 => "11",
            0x0301 => "10",
            0x0300 => "s3",
            0x0002 => "s2",
            _ => "00",
        };
        let ciphers: Vec<u16> = self
            .ciphers
            .iter()
            .copied()
            .filter(|c| !is_grease(*c))
            .collect();
        let exts: Vec<u16> = self
            .extensions
            .iter()
            .copied()
            .filter(|e| !is_grease(*e))
            .collect();
        let alpn = match self.alpn.first().filter(|a| !a.is_empty()) {
            None => "00".to_string(),
            Some(a) => {
                let (f, l) = (a[0], a[a.len() - 1]);
                if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                    format!("{}{}", char::from(f), char::from(l))
                } else {
                    let h = format!("{f:02x}{l:02x}");
                    format!("{}{}", &h[..1], &h[3..])
                }
            }
        };
        let a = format!(
            "t{v}{}{:02}{:02}{alpn}",
            if self.sni { 'd' } else { 'i' },
            ciphers.len().min(99),
            exts.len().min(99)
        );
        let mut cs: Vec<String> = ciphers.iter().map(|c| hex4(*c)).collect();
        cs.sort();
        let mut es: Vec<String> = exts
            .iter()
            .filter(|e| **e != 0x0000 && **e != 0x0010)
            .map(|e| hex4(*e))
            .collect();
        es.sort();
        let mut c = es.join(",");
        let sigs: Vec<String> = self
            .signature_algorithms
            .iter()
            .filter(|s| !is_grease(**s))
            .map(|s| hex4(*s))
            .collect();
        if !sigs.is_empty() {
            c.push('_');
            c.push_str(&sigs.join(","));
        }
        format!("{a}_{}_{}", hash12(&cs.join(",")), hash12(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_says_when_parse_can_finish() {
        // A ClientHello split into 1-byte records, arriving a byte at a time.
        let hello = hello(
            &[0x1301, 0xc02b],
            &[(0x0000, vec![0, 0]), (0x0010, alpn(&[b"h2"]))],
        );
        let body = &hello[5..];
        let mut split = Vec::new();
        for b in body {
            split.extend_from_slice(&[0x16, 3, 1, 0, 1, *b]);
        }
        let mut p = Progress::default();
        let mut calls = 0;
        for i in 1..=split.len() {
            if p.ready(&split[..i]) {
                calls += 1;
                assert_ne!(parse(&split[..i]), Hello::Partial, "at {i}");
                break;
            }
            assert_eq!(parse(&split[..i]), Hello::Partial, "at {i}");
        }
        assert_eq!(calls, 1);
        let mut p = Progress::default();
        assert!(p.ready(b"GET / HTTP/1.1\r\n"), "not TLS: ready at once");
    }

    /// Build a ClientHello record from parts.
    fn hello(ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[7u8; 32]);
        body.push(0);
        body.extend_from_slice(&((ciphers.len() * 2) as u16).to_be_bytes());
        for c in ciphers {
            body.extend_from_slice(&c.to_be_bytes());
        }
        body.extend_from_slice(&[1, 0]);
        let mut e = Vec::new();
        for (t, d) in exts {
            e.extend_from_slice(&t.to_be_bytes());
            e.extend_from_slice(&(d.len() as u16).to_be_bytes());
            e.extend_from_slice(d);
        }
        body.extend_from_slice(&(e.len() as u16).to_be_bytes());
        body.extend_from_slice(&e);
        let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 3, 1, (hs.len() >> 8) as u8, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    fn alpn(protos: &[&[u8]]) -> Vec<u8> {
        let mut l = Vec::new();
        for p in protos {
            l.push(p.len() as u8);
            l.extend_from_slice(p);
        }
        let mut d = (l.len() as u16).to_be_bytes().to_vec();
        d.extend_from_slice(&l);
        d
    }

    #[test]
    fn ja4_of_a_tls13_hello() {
        let rec = hello(
            &[0x1a1a, 0x1301, 0x1302, 0x1303, 0xc02b],
            &[
                (0x2a2a, vec![]),
                (0x0000, vec![0, 0]),
                (0x0010, alpn(&[b"h2", b"http/1.1"])),
                (0x000d, vec![0, 4, 0x04, 0x03, 0x08, 0x04]),
                (0x002b, vec![4, 0x3a, 0x3a, 0x03, 0x04]),
                (0x000a, vec![0, 2, 0, 0x1d]),
            ],
        );
        let Hello::Complete(h) = parse(&rec) else {
            panic!("not parsed")
        };
        assert!(h.sni);
        let j = h.ja4();
        // TLS 1.3, SNI, 4 ciphers and 5 extensions without GREASE, ALPN h2.
        assert!(j.starts_with("t13d0405h2_"), "{j}");
        assert_eq!(j.len(), "t13d0405h2_".len() + 12 + 1 + 12);
        // Order of extensions does not change JA4 (it is sorted); ciphers' order neither.
        let rec2 = hello(
            &[0xc02b, 0x1303, 0x1302, 0x1301],
            &[
                (0x000a, vec![0, 2, 0, 0x1d]),
                (0x002b, vec![2, 0x03, 0x04]),
                (0x000d, vec![0, 4, 0x04, 0x03, 0x08, 0x04]),
                (0x0010, alpn(&[b"h2"])),
                (0x0000, vec![0, 0]),
            ],
        );
        let Hello::Complete(h2) = parse(&rec2) else {
            panic!()
        };
        assert_eq!(h2.ja4(), j);
        // Different signature algorithm order: a different c part.
        let rec3 = hello(
            &[0xc02b, 0x1303, 0x1302, 0x1301],
            &[
                (0x000a, vec![0, 2, 0, 0x1d]),
                (0x002b, vec![2, 0x03, 0x04]),
                (0x000d, vec![0, 4, 0x08, 0x04, 0x04, 0x03]),
                (0x0010, alpn(&[b"h2"])),
                (0x0000, vec![0, 0]),
            ],
        );
        let Hello::Complete(h3) = parse(&rec3) else {
            panic!()
        };
        assert_ne!(h3.ja4(), j);
        assert_eq!(h3.ja4()[..24], j[..24]);
    }

    #[test]
    fn no_sni_no_alpn_tls12() {
        let Hello::Complete(h) = parse(&hello(&[0x009c], &[])) else {
            panic!()
        };
        assert!(h.ja4().starts_with("t12i010000_"), "{}", h.ja4());
        assert!(h.ja4().ends_with("_000000000000"));
    }

    #[test]
    fn partial_split_and_hostile_input() {
        let rec = hello(&[0x1301], &[(0x0000, vec![0, 0])]);
        for cut in 0..rec.len() {
            assert_eq!(parse(&rec[..cut]), Hello::Partial, "cut at {cut}");
        }
        // The handshake split over two records.
        let hs = &rec[5..];
        let (a, b) = hs.split_at(10);
        let mut two = vec![0x16, 3, 1, 0, a.len() as u8];
        two.extend_from_slice(a);
        two.extend_from_slice(&[0x16, 3, 1, (b.len() >> 8) as u8, b.len() as u8]);
        two.extend_from_slice(b);
        assert!(matches!(parse(&two), Hello::Complete(_)));
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n"), Hello::Invalid(_)));
        assert!(matches!(parse(&[0x16, 3, 1, 0, 0]), Hello::Invalid(_)));
        // Lengths pointing past the end are refused, not read.
        let mut bad = rec.clone();
        let n = bad.len();
        bad[n - 3] = 0xff;
        assert!(matches!(
            parse(&bad),
            Hello::Invalid(_) | Hello::Complete(_)
        ));
        // Endless records of a huge hello stop at MAX_HELLO.
        let mut big = Vec::new();
        big.extend_from_slice(&[0x16, 3, 1, 0x40, 0]);
        big.extend_from_slice(&[1, 0xff, 0xff, 0xff]);
        big.resize(5 + 0x4000, 0);
        while big.len() < MAX_HELLO + 10 {
            big.extend_from_slice(&[0x16, 3, 1, 0x40, 0]);
            big.resize(big.len() + 0x4000, 0);
        }
        assert!(matches!(parse(&big), Hello::Invalid(_)));
    }
}
