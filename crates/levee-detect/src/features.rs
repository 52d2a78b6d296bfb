//! The features of a request that signatures are made of, hashed to `u64`
//! keys so that matching a rule costs one comparison. Labels (the readable
//! form) are built only for the requests the detector samples.

use std::net::IpAddr;

/// A dimension of a request's features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dim {
    /// Method, path (no query), User-Agent and header order together: the
    /// tightest description of a bot's request, with the least collateral.
    Combo,
    HeaderOrder,
    UserAgent,
    Ja4,
    H2Settings,
    QueryShape,
    Path,
    Method,
    /// The client's /24 (IPv4) or /64 (IPv6).
    Prefix,
}

impl Dim {
    pub const ALL: [Dim; 9] = [
        Dim::Combo,
        Dim::HeaderOrder,
        Dim::UserAgent,
        Dim::Ja4,
        Dim::H2Settings,
        Dim::QueryShape,
        Dim::Path,
        Dim::Method,
        Dim::Prefix,
    ];
    pub const COUNT: usize = 9;

    pub fn index(self) -> usize {
        self as usize
    }

    /// The dimension a label names (`Dim::label`'s inverse).
    pub fn parse(s: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.label() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Dim::Combo => "combo",
            Dim::HeaderOrder => "header_order",
            Dim::UserAgent => "user_agent",
            Dim::Ja4 => "ja4",
            Dim::H2Settings => "h2_settings",
            Dim::QueryShape => "query_shape",
            Dim::Path => "path",
            Dim::Method => "method",
            Dim::Prefix => "prefix",
        }
    }
}

/// FNV-1a, seeded per dimension (stable across processes so that keys can
/// be compared between edges of a fleet).
pub fn hash(seed: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed.wrapping_mul(0x100_0000_01b3);
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    // 0 means "absent" in `Keys`.
    h | 1
}

/// Hash of header names in the order sent (case-folded).
pub fn header_order_hash<'a>(names: impl Iterator<Item = &'a [u8]>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for n in names {
        for &b in n {
            h ^= u64::from(b.to_ascii_lowercase());
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        h ^= u64::from(b',');
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h | 1
}

/// Header names in order, lower case, comma-separated (the label of `HeaderOrder`).
pub fn header_order_label<'a>(names: impl Iterator<Item = &'a [u8]>) -> String {
    let mut s = String::new();
    for n in names {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(&String::from_utf8_lossy(n).to_ascii_lowercase());
        if s.len() > 200 {
            s.push('…');
            break;
        }
    }
    s
}

/// The shape of a query string: parameter names in order with a class for
/// each value's length (`e`mpty, `s`hort ≤ 8, `m`edium ≤ 32, `l`ong).
/// Names longer than 16 bytes or containing digits are written `*`: random
/// names (cache busting) then share one shape.
pub fn query_shape(query: &[u8]) -> String {
    let mut s = String::new();
    if query.is_empty() {
        return s;
    }
    for (i, kv) in query.split(|&b| b == b'&').enumerate() {
        if i >= 16 {
            s.push_str("&…");
            break;
        }
        let (k, v) = match kv.iter().position(|&b| b == b'=') {
            Some(p) => (&kv[..p], &kv[p + 1..]),
            None => (kv, &b""[..]),
        };
        if i > 0 {
            s.push('&');
        }
        if k.len() > 16 || k.iter().any(u8::is_ascii_digit) || !k.is_ascii() {
            s.push('*');
        } else {
            s.push_str(&String::from_utf8_lossy(k));
        }
        s.push('=');
        s.push(match v.len() {
            0 => 'e',
            1..=8 => 's',
            9..=32 => 'm',
            _ => 'l',
        });
    }
    s
}

/// The /24 or /64 of an address, as text.
pub fn prefix_label(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => prefix_label(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

fn prefix_bytes(ip: IpAddr) -> ([u8; 8], usize) {
    let mut b = [0u8; 8];
    match ip {
        IpAddr::V4(v4) => {
            b[..3].copy_from_slice(&v4.octets()[..3]);
            (b, 3)
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => prefix_bytes(IpAddr::V4(v4)),
            None => {
                b.copy_from_slice(&v6.octets()[..8]);
                (b, 8)
            }
        },
    }
}

/// What the edge knows about a request when it asks the detector.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub client: IpAddr,
    pub method: &'a [u8],
    /// Path without the query.
    pub path: &'a [u8],
    /// Query without the `?`.
    pub query: &'a [u8],
    pub user_agent: &'a [u8],
    /// `header_order_hash` of the request's header names.
    pub header_order: u64,
    /// JA4 of the TLS ClientHello, if the connection is TLS.
    pub ja4: Option<&'a str>,
    /// HTTP/2 SETTINGS fingerprint, if the connection is HTTP/2.
    pub h2: Option<&'a str>,
}

/// Split a request target into path and query.
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    match target.iter().position(|&b| b == b'?') {
        Some(p) => (&target[..p], &target[p + 1..]),
        None => (target, &b""[..]),
    }
}

/// A request's key in every dimension (0: the dimension does not apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys(pub [u64; Dim::COUNT]);

impl Keys {
    pub fn of(r: &Request<'_>) -> Keys {
        let mut k = [0u64; Dim::COUNT];
        let (pb, pn) = prefix_bytes(r.client);
        k[Dim::Prefix.index()] = hash(9, &[&pb[..pn]]);
        k[Dim::Method.index()] = hash(8, &[r.method]);
        k[Dim::Path.index()] = hash(7, &[r.path]);
        k[Dim::QueryShape.index()] = hash(6, &[query_shape(r.query).as_bytes()]);
        k[Dim::UserAgent.index()] = hash(3, &[r.user_agent]);
        k[Dim::HeaderOrder.index()] = r.header_order;
        k[Dim::Ja4.index()] = r.ja4.map_or(0, |j| hash(4, &[j.as_bytes()]));
        k[Dim::H2Settings.index()] = r.h2.map_or(0, |j| hash(5, &[j.as_bytes()]));
        k[Dim::Combo.index()] = hash(
            1,
            &[
                r.method,
                r.path,
                r.user_agent,
                &r.header_order.to_le_bytes(),
            ],
        );
        Keys(k)
    }

    pub fn get(&self, d: Dim) -> u64 {
        self.0[d.index()]
    }
}

/// The readable form of each dimension for a sampled request.
pub fn labels(r: &Request<'_>, header_order: &str) -> [String; Dim::COUNT] {
    let ua = String::from_utf8_lossy(&r.user_agent[..r.user_agent.len().min(200)]).into_owned();
    let method = String::from_utf8_lossy(&r.method[..r.method.len().min(16)]).into_owned();
    let path = String::from_utf8_lossy(&r.path[..r.path.len().min(200)]).into_owned();
    let mut out: [String; Dim::COUNT] = Default::default();
    out[Dim::Prefix.index()] = prefix_label(r.client);
    out[Dim::Method.index()] = method.clone();
    out[Dim::Path.index()] = path.clone();
    out[Dim::QueryShape.index()] = query_shape(r.query);
    out[Dim::UserAgent.index()] = ua.clone();
    out[Dim::HeaderOrder.index()] = header_order.to_string();
    out[Dim::Ja4.index()] = r.ja4.unwrap_or("").to_string();
    out[Dim::H2Settings.index()] = r.h2.unwrap_or("").to_string();
    out[Dim::Combo.index()] = format!("{method} {path} ua={ua:?} headers={header_order}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_shapes_hide_random_names_and_values() {
        assert_eq!(query_shape(b""), "");
        assert_eq!(query_shape(b"q=elections&page=2"), "q=m&page=s");
        assert_eq!(query_shape(b"q=a"), "q=s");
        assert_eq!(query_shape(b"x8f3a=1&zz91=2"), "*=s&*=s");
        assert_eq!(query_shape(b"flag"), "flag=e");
    }

    #[test]
    fn header_order_is_case_blind_and_order_sensitive() {
        let a: [&[u8]; 2] = [b"Host", b"User-Agent"];
        let b: [&[u8]; 2] = [b"host", b"user-agent"];
        let c: [&[u8]; 2] = [b"User-Agent", b"Host"];
        assert_eq!(
            header_order_hash(a.iter().copied()),
            header_order_hash(b.iter().copied())
        );
        assert_ne!(
            header_order_hash(a.iter().copied()),
            header_order_hash(c.iter().copied())
        );
        assert_eq!(header_order_label(c.iter().copied()), "user-agent,host");
    }

    #[test]
    fn prefixes() {
        assert_eq!(prefix_label("10.1.2.3".parse().unwrap()), "10.1.2.0/24");
        assert_eq!(
            prefix_label("2001:db8:1:2:3::4".parse().unwrap()),
            "2001:db8:1:2::/64"
        );
        let r = |ip: &str| Request {
            client: ip.parse().unwrap(),
            method: b"GET",
            path: b"/",
            query: b"",
            user_agent: b"x",
            header_order: 1,
            ja4: None,
            h2: None,
        };
        assert_eq!(
            Keys::of(&r("10.1.2.3")).get(Dim::Prefix),
            Keys::of(&r("10.1.2.200")).get(Dim::Prefix)
        );
        assert_ne!(
            Keys::of(&r("10.1.2.3")).get(Dim::Prefix),
            Keys::of(&r("10.1.3.3")).get(Dim::Prefix)
        );
        assert_eq!(Keys::of(&r("10.1.2.3")).get(Dim::Ja4), 0);
    }
}
