//! Indicators of compromise: loaded from plain lists, CSV, STIX 2.1 bundles
//! and MISP events (JSON, or feed directories of them), and matched against
//! log records: client address (CIDR), host and referer domain (and their
//! subdomains), URL, user agent, file name and hash in the request target.
//!
//! Nothing is dropped silently: every indicator that cannot be used (a STIX
//! pattern over objects web logs do not have, a malformed value, a MISP
//! attribute not meant for detection) is listed with its source and reason.

use crate::logs::Record;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Ip,
    Domain,
    Url,
    UserAgent,
    Hash,
    Filename,
}

/// One indicator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ioc {
    pub kind: Kind,
    /// Normalised value (lower case for domains, hashes and URLs).
    pub value: String,
    /// Where it came from: `file:line`, or `file#stix-id`, or `file#misp-uuid`.
    pub source: String,
}

/// An indicator that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Skipped {
    pub source: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub iocs: Vec<Ioc>,
    pub skipped: Vec<Skipped>,
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let ip: IpAddr = a.trim().parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match l {
        Some(l) => l.trim().parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, len))
}

fn valid_domain(s: &str) -> bool {
    s.contains('.')
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Make an indicator of `kind` from a raw value, or say why not.
pub fn make(kind: Kind, value: &str, source: String) -> Result<Ioc, Skipped> {
    let v = value.trim();
    let bad = |reason: &str| Skipped {
        source: source.clone(),
        value: v.to_string(),
        reason: reason.to_string(),
    };
    let value = match kind {
        Kind::Ip => {
            let (ip, len) = parse_cidr(v).ok_or_else(|| bad("not an IP address or CIDR"))?;
            format!("{ip}/{len}")
        }
        Kind::Domain => {
            let d = v.trim_end_matches('.').to_ascii_lowercase();
            if !valid_domain(&d) {
                return Err(bad("not a domain name"));
            }
            d
        }
        Kind::Url => {
            let u = v.to_ascii_lowercase();
            if !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with('/')) {
                return Err(bad("not an http(s) URL"));
            }
            u
        }
        Kind::Hash => {
            if !is_hex(v) || ![32, 40, 64, 128].contains(&v.len()) {
                return Err(bad("not an MD5, SHA-1, SHA-256 or SHA-512 hex digest"));
            }
            v.to_ascii_lowercase()
        }
        Kind::UserAgent | Kind::Filename => {
            if v.is_empty() {
                return Err(bad("empty"));
            }
            v.to_string()
        }
    };
    Ok(Ioc {
        kind,
        value,
        source,
    })
}

/// Guess the kind of a bare value (plain lists).
pub fn guess(v: &str) -> Kind {
    let v = v.trim();
    if parse_cidr(v).is_some() {
        Kind::Ip
    } else if v.starts_with("http://") || v.starts_with("https://") {
        Kind::Url
    } else if is_hex(v) && [32, 40, 64, 128].contains(&v.len()) {
        Kind::Hash
    } else if valid_domain(&v.to_ascii_lowercase()) {
        Kind::Domain
    } else {
        Kind::UserAgent
    }
}

fn kind_name(s: &str) -> Option<Kind> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "ip" | "ipv4" | "ipv6" | "ip-dst" | "ip-src" | "cidr" | "ipv4-addr" | "ipv6-addr" => {
            Kind::Ip
        }
        "domain" | "hostname" | "domain-name" | "fqdn" => Kind::Domain,
        "url" | "uri" => Kind::Url,
        "user-agent" | "useragent" | "ua" => Kind::UserAgent,
        "hash" | "md5" | "sha1" | "sha256" | "sha512" | "sha-1" | "sha-256" => Kind::Hash,
        "filename" | "file" | "file-name" => Kind::Filename,
        _ => return None,
    })
}

/// A plain list: one value per line, `#` comments, kinds guessed.
pub fn plain(text: &str, file: &str) -> Loaded {
    let mut out = Loaded::default();
    for (i, line) in text.lines().enumerate() {
        let l = line.split(" #").next().unwrap_or("").trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        match make(guess(l), l, format!("{file}:{}", i + 1)) {
            Ok(x) => out.iocs.push(x),
            Err(s) => out.skipped.push(s),
        }
    }
    out
}

/// CSV with a header naming a `type` (or `kind`) and a `value` (or
/// `indicator`) column; quoted fields allowed.
pub fn csv(text: &str, file: &str) -> Loaded {
    let mut out = Loaded::default();
    let split = |l: &str| -> Vec<String> {
        let mut v = Vec::new();
        let mut cur = String::new();
        let mut q = false;
        let mut it = l.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '"' if q && it.peek() == Some(&'"') => {
                    cur.push('"');
                    it.next();
                }
                '"' => q = !q,
                ',' if !q => v.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        v.push(cur);
        v
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return out;
    };
    let h: Vec<String> = split(header)
        .iter()
        .map(|x| x.trim().to_ascii_lowercase())
        .collect();
    let col = |names: &[&str]| h.iter().position(|x| names.contains(&x.as_str()));
    let vcol = col(&["value", "indicator", "ioc"]);
    let tcol = col(&["type", "kind", "indicator_type"]);
    let Some(vcol) = vcol else {
        out.skipped.push(Skipped {
            source: format!("{file}:1"),
            value: header.to_string(),
            reason: "no value/indicator column in the header".into(),
        });
        return out;
    };
    for (i, l) in lines {
        let f = split(l);
        let src = format!("{file}:{}", i + 1);
        let Some(v) = f.get(vcol).map(|x| x.trim().to_string()) else {
            out.skipped.push(Skipped {
                source: src,
                value: l.to_string(),
                reason: "missing value column".into(),
            });
            continue;
        };
        let kind = match tcol.and_then(|t| f.get(t)) {
            Some(t) => match kind_name(t) {
                Some(k) => k,
                None => {
                    out.skipped.push(Skipped {
                        source: src,
                        value: v,
                        reason: format!("type {t:?} is not one web logs can show"),
                    });
                    continue;
                }
            },
            None => guess(&v),
        };
        match make(kind, &v, src) {
            Ok(x) => out.iocs.push(x),
            Err(s) => out.skipped.push(s),
        }
    }
    out
}

/// The comparisons of a STIX pattern: `[a:b = 'x' OR c:d = 'y']`. Returns
/// the OR-alternatives, each an AND of (object path, value); `Err` for what
/// this reader does not understand.
pub fn stix_pattern(p: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let p = p.trim();
    let inner = p
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or("only a single observation expression [ ... ] is supported")?;
    if inner.contains("] ") || inner.contains('[') && !inner.contains("hashes") {
        return Err("several observations (FOLLOWEDBY, qualifiers) are not supported".into());
    }
    let mut alts = Vec::new();
    let mut cur = Vec::new();
    let mut rest = inner.trim();
    loop {
        // path
        let (path, r) = rest
            .split_once(char::is_whitespace)
            .ok_or("incomplete comparison")?;
        let r = r.trim_start();
        let (op, r) = r
            .split_once(char::is_whitespace)
            .ok_or("incomplete comparison")?;
        if op != "=" {
            return Err(format!("operator {op:?} is not supported (only =)"));
        }
        let r = r.trim_start();
        let r = r
            .strip_prefix('\'')
            .ok_or("the value must be a quoted string")?;
        let mut val = String::new();
        let mut chars = r.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(n);
                    }
                }
                '\'' => {
                    end = Some(i);
                    break;
                }
                c => val.push(c),
            }
        }
        let end = end.ok_or("unterminated string")?;
        cur.push((path.to_string(), val));
        rest = r[end + 1..].trim_start();
        if rest.is_empty() {
            alts.push(cur);
            break;
        }
        let (kw, r) = rest
            .split_once(char::is_whitespace)
            .ok_or("dangling text")?;
        match kw {
            "OR" => alts.push(std::mem::take(&mut cur)),
            "AND" => {}
            other => return Err(format!("unexpected {other:?}")),
        }
        rest = r.trim_start();
    }
    Ok(alts)
}

fn stix_kind(path: &str) -> Option<Kind> {
    match path {
        "ipv4-addr:value" | "ipv6-addr:value" => Some(Kind::Ip),
        "domain-name:value" => Some(Kind::Domain),
        "url:value" => Some(Kind::Url),
        "file:name" => Some(Kind::Filename),
        p if p.starts_with("file:hashes.") => Some(Kind::Hash),
        _ => None,
    }
}

/// A STIX 2.1 bundle (or a single indicator object).
pub fn stix(text: &str, file: &str) -> Result<Loaded, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{file}: not JSON: {e}"))?;
    let objs: Vec<&serde_json::Value> = match v.get("objects").and_then(|o| o.as_array()) {
        Some(a) => a.iter().collect(),
        None => vec![&v],
    };
    let mut out = Loaded::default();
    for o in objs {
        if o.get("type").and_then(|t| t.as_str()) != Some("indicator") {
            continue;
        }
        let id = o.get("id").and_then(|t| t.as_str()).unwrap_or("?");
        let src = format!("{file}#{id}");
        let pattern = o.get("pattern").and_then(|t| t.as_str()).unwrap_or("");
        let ptype = o
            .get("pattern_type")
            .and_then(|t| t.as_str())
            .unwrap_or("stix");
        if ptype != "stix" {
            out.skipped.push(Skipped {
                source: src,
                value: pattern.to_string(),
                reason: format!("pattern_type {ptype:?} is not supported"),
            });
            continue;
        }
        match stix_pattern(pattern) {
            Err(e) => out.skipped.push(Skipped {
                source: src,
                value: pattern.to_string(),
                reason: e,
            }),
            Ok(alts) => {
                for alt in alts {
                    if alt.len() > 1 {
                        out.skipped.push(Skipped {
                            source: src.clone(),
                            value: pattern.to_string(),
                            reason: "an AND of several objects cannot be seen in one web log line"
                                .into(),
                        });
                        continue;
                    }
                    let (path, val) = &alt[0];
                    match stix_kind(path) {
                        None => out.skipped.push(Skipped {
                            source: src.clone(),
                            value: format!("{path} = {val}"),
                            reason: format!("{path} is not in web logs"),
                        }),
                        Some(k) => match make(k, val, src.clone()) {
                            Ok(x) => out.iocs.push(x),
                            Err(s) => out.skipped.push(s),
                        },
                    }
                }
            }
        }
    }
    Ok(out)
}

fn misp_kind(t: &str) -> Option<Kind> {
    Some(match t {
        "ip-dst" | "ip-src" | "ip" => Kind::Ip,
        "domain" | "hostname" => Kind::Domain,
        "url" | "uri" | "link" => Kind::Url,
        "user-agent" => Kind::UserAgent,
        "md5" | "sha1" | "sha256" | "sha512" => Kind::Hash,
        "filename" => Kind::Filename,
        _ => return None,
    })
}

/// A MISP event (`{"Event": {...}}` or the event object itself).
pub fn misp(text: &str, file: &str) -> Result<Loaded, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("{file}: not JSON: {e}"))?;
    let e = v.get("Event").unwrap_or(&v);
    let mut attrs: Vec<&serde_json::Value> = e
        .get("Attribute")
        .and_then(|a| a.as_array())
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if let Some(objs) = e.get("Object").and_then(|o| o.as_array()) {
        for o in objs {
            if let Some(a) = o.get("Attribute").and_then(|a| a.as_array()) {
                attrs.extend(a.iter());
            }
        }
    }
    let mut out = Loaded::default();
    for a in attrs {
        let t = a.get("type").and_then(|x| x.as_str()).unwrap_or("");
        let val = a.get("value").and_then(|x| x.as_str()).unwrap_or("");
        let uuid = a.get("uuid").and_then(|x| x.as_str()).unwrap_or("?");
        let src = format!("{file}#{uuid}");
        let to_ids = a.get("to_ids").and_then(|x| x.as_bool()).unwrap_or(false);
        if !to_ids {
            out.skipped.push(Skipped {
                source: src,
                value: format!("{t}: {val}"),
                reason: "to_ids is false (not meant for detection)".into(),
            });
            continue;
        }
        // Composite types: `ip-dst|port`, `domain|ip`, `filename|md5`, ...
        let types: Vec<&str> = t.split('|').collect();
        let vals: Vec<&str> = if types.len() > 1 {
            val.splitn(types.len(), '|').collect()
        } else {
            vec![val]
        };
        for (ty, v) in types.iter().zip(vals.iter()) {
            if *ty == "port" {
                continue;
            }
            match misp_kind(ty) {
                None => out.skipped.push(Skipped {
                    source: src.clone(),
                    value: format!("{ty}: {v}"),
                    reason: format!("MISP type {ty:?} is not in web logs"),
                }),
                Some(k) => match make(k, v, src.clone()) {
                    Ok(x) => out.iocs.push(x),
                    Err(s) => out.skipped.push(s),
                },
            }
        }
    }
    Ok(out)
}

/// Indicators indexed for matching.
#[derive(Debug, Default)]
pub struct Index {
    /// Per prefix length: masked address → indicator index.
    nets: Vec<(u8, bool, HashMap<u128, usize>)>,
    domains: HashMap<String, usize>,
    urls: Vec<(String, usize)>,
    uas: HashMap<String, usize>,
    hashes: Vec<(String, usize)>,
    files: HashMap<String, usize>,
    pub iocs: Vec<Ioc>,
}

fn key(ip: IpAddr) -> (u128, bool) {
    match ip.to_canonical() {
        IpAddr::V4(v) => (u128::from(u32::from(v)), false),
        IpAddr::V6(v) => (u128::from(v), true),
    }
}

fn mask(k: u128, len: u8, v6: bool) -> u128 {
    let bits = if v6 { 128 } else { 32 };
    if len == 0 {
        return 0;
    }
    let m = if v6 { u128::MAX } else { u128::from(u32::MAX) };
    k & (m << (bits - u32::from(len)) & m)
}

/// The host part of a URL.
fn url_host(u: &str) -> Option<&str> {
    let r = u.split_once("://")?.1;
    let h = r.split(['/', '?', '#']).next()?;
    let h = h.rsplit_once('@').map_or(h, |(_, x)| x);
    Some(h.split(':').next().unwrap_or(h))
}

impl Index {
    pub fn new(iocs: Vec<Ioc>) -> Index {
        let mut ix = Index::default();
        let mut seen = HashSet::new();
        for ioc in iocs {
            if !seen.insert((ioc.kind, ioc.value.clone())) {
                continue;
            }
            let i = ix.iocs.len();
            match ioc.kind {
                Kind::Ip => {
                    if let Some((ip, len)) = parse_cidr(&ioc.value) {
                        let (k, v6) = key(ip);
                        match ix.nets.iter_mut().find(|(l, v, _)| *l == len && *v == v6) {
                            Some((_, _, m)) => {
                                m.insert(mask(k, len, v6), i);
                            }
                            None => {
                                let mut m = HashMap::new();
                                m.insert(mask(k, len, v6), i);
                                ix.nets.push((len, v6, m));
                            }
                        }
                    }
                }
                Kind::Domain => {
                    ix.domains.insert(ioc.value.clone(), i);
                }
                Kind::Url => ix.urls.push((ioc.value.clone(), i)),
                Kind::UserAgent => {
                    ix.uas.insert(ioc.value.to_ascii_lowercase(), i);
                }
                Kind::Hash => ix.hashes.push((ioc.value.clone(), i)),
                Kind::Filename => {
                    ix.files.insert(ioc.value.to_ascii_lowercase(), i);
                }
            }
            ix.iocs.push(ioc);
        }
        ix
    }

    fn domain(&self, host: &str) -> Option<usize> {
        let mut h = host.trim_end_matches('.').to_ascii_lowercase();
        loop {
            if let Some(i) = self.domains.get(&h) {
                return Some(*i);
            }
            match h.split_once('.') {
                Some((_, rest)) if rest.contains('.') => h = rest.to_string(),
                _ => return None,
            }
        }
    }

    /// Every indicator (index into `iocs`) the record shows, with the field that showed it.
    pub fn matches(&self, r: &Record<'_>) -> Vec<(usize, &'static str)> {
        let mut out = Vec::new();
        // (No address is parsed when there is nothing to look up by one.)
        let ip = (!self.nets.is_empty())
            .then(|| r.client.parse::<IpAddr>().ok())
            .flatten();
        if let Some(ip) = ip {
            let (k, v6) = key(ip);
            for (len, nv6, m) in &self.nets {
                if *nv6 == v6 {
                    if let Some(i) = m.get(&mask(k, *len, v6)) {
                        out.push((*i, "client"));
                    }
                }
            }
        }
        if !self.domains.is_empty() {
            let host = r.host.split(':').next().unwrap_or("");
            if let Some(i) = self.domain(host) {
                out.push((i, "host"));
            }
            if let Some(i) = url_host(&r.referer).and_then(|h| self.domain(h)) {
                out.push((i, "referer"));
            }
        }
        if !self.urls.is_empty() {
            let target = r.target.to_ascii_lowercase();
            let referer = r.referer.to_ascii_lowercase();
            for (u, i) in &self.urls {
                let path = if u.starts_with('/') {
                    Some(u.as_str())
                } else {
                    u.split_once("://")
                        .and_then(|(_, rest)| rest.find('/').map(|p| &rest[p..]))
                };
                let host_ok =
                    url_host(u).is_none_or(|h| r.host.is_empty() || r.host.eq_ignore_ascii_case(h));
                if path.is_some_and(|p| p.len() > 1 && host_ok && target.starts_with(p)) {
                    out.push((*i, "url"));
                } else if !referer.is_empty() && referer.starts_with(u.as_str()) {
                    out.push((*i, "referer"));
                }
            }
        }
        if !self.uas.is_empty() {
            if let Some(i) = self.uas.get(&r.user_agent.to_ascii_lowercase()) {
                out.push((*i, "user_agent"));
            }
        }
        if !self.files.is_empty() {
            let last = r
                .path()
                .rsplit('/')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            if let Some(i) = self.files.get(&last) {
                out.push((*i, "path"));
            }
        }
        if !self.hashes.is_empty() {
            let t = r.target.to_ascii_lowercase();
            for (h, i) in &self.hashes {
                if t.contains(h.as_str()) {
                    out.push((*i, "target"));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stix_patterns() {
        assert_eq!(
            stix_pattern("[ipv4-addr:value = '10.0.0.0/8']").unwrap(),
            vec![vec![(
                "ipv4-addr:value".to_string(),
                "10.0.0.0/8".to_string()
            )]]
        );
        let p = stix_pattern("[domain-name:value = 'a.example' OR ipv4-addr:value = '1.2.3.4']")
            .unwrap();
        assert_eq!(p.len(), 2);
        let p = stix_pattern(
            "[x509-certificate:issuer = 'CN=X' AND x509-certificate:serial_number = '1']",
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].len(), 2);
        assert_eq!(
            stix_pattern("[file:hashes.'SHA-256' = 'ab']").unwrap()[0][0].0,
            "file:hashes.'SHA-256'"
        );
        assert!(stix_pattern("[email-message:subject MATCHES '^x']").is_err());
        assert!(stix_pattern("[a:b = 'x'] FOLLOWEDBY [c:d = 'y']").is_err());
        assert!(stix_pattern("ipv4-addr:value = '1.2.3.4'").is_err());
        assert!(stix_pattern("[a:b = 'unterminated]").is_err());
    }

    #[test]
    fn plain_and_csv_lists() {
        let l = plain("# feed\n10.0.0.0/8\n203.0.113.7 # one host\nevil.example\nhttps://evil.example/x.php\nd41d8cd98f00b204e9800998ecf8427e\nBadBot/1.0 (x)\n\n10.0.0.0/33\n", "f.txt");
        let kinds: Vec<Kind> = l.iocs.iter().map(|i| i.kind).collect();
        assert_eq!(
            kinds,
            vec![
                Kind::Ip,
                Kind::Ip,
                Kind::Domain,
                Kind::Url,
                Kind::Hash,
                Kind::UserAgent,
                Kind::UserAgent
            ]
        );
        assert_eq!(l.iocs[1].source, "f.txt:3");
        let c = csv("type,value,comment\nip,198.51.100.0/24,\"scanner, noisy\"\ndomain,evil.example,\nemail,x@y.z,\nip,not-an-ip,\n", "f.csv");
        assert_eq!(c.iocs.len(), 2);
        assert_eq!(c.skipped.len(), 2);
        assert!(c.skipped[0].reason.contains("email"));
        assert_eq!(c.skipped[1].source, "f.csv:5");
    }

    #[test]
    fn matching_a_record() {
        let l = plain("198.51.100.0/24\n2001:db8::/32\nevil.example\nhttps://shop.test/export.csv\nBadBot/1.0\nd41d8cd98f00b204e9800998ecf8427e\n", "f");
        let mut l2 = l.iocs;
        l2.push(make(Kind::Filename, "shell.php", "m".into()).unwrap());
        let ix = Index::new(l2);
        let r = Record {
            client: "198.51.100.77".into(),
            target: "/export.csv?id=d41d8cd98f00b204e9800998ecf8427e".into(),
            referer: "http://cdn.evil.example/page".into(),
            user_agent: "badbot/1.0".into(),
            host: "shop.test".into(),
            ..Record::default()
        };
        let mut why: Vec<&str> = ix.matches(&r).into_iter().map(|(_, w)| w).collect();
        why.sort_unstable();
        assert_eq!(
            why,
            vec!["client", "referer", "target", "url", "user_agent"]
        );
        let r6 = Record {
            client: "2001:db8:1::5".into(),
            target: "/up/Shell.PHP".into(),
            ..Record::default()
        };
        let mut why: Vec<&str> = ix.matches(&r6).into_iter().map(|(_, w)| w).collect();
        why.sort_unstable();
        assert_eq!(why, vec!["client", "path"]);
        let clean = Record {
            client: "192.0.2.1".into(),
            target: "/".into(),
            ..Record::default()
        };
        assert!(ix.matches(&clean).is_empty());
    }

    #[test]
    fn misp_composites_and_to_ids() {
        let e = r#"{"Event":{"Attribute":[
            {"type":"ip-dst|port","value":"203.0.113.5|443","to_ids":true,"uuid":"a"},
            {"type":"domain|ip","value":"evil.example|198.51.100.9","to_ids":true,"uuid":"b"},
            {"type":"text","value":"hello","to_ids":false,"uuid":"c"},
            {"type":"regkey","value":"HKLM\\x","to_ids":true,"uuid":"d"}],
            "Object":[{"Attribute":[{"type":"url","value":"https://evil.example/a","to_ids":true,"uuid":"e"}]}]}}"#;
        let l = misp(e, "ev.json").unwrap();
        let v: Vec<(Kind, &str)> = l.iocs.iter().map(|i| (i.kind, i.value.as_str())).collect();
        assert_eq!(
            v,
            vec![
                (Kind::Ip, "203.0.113.5/32"),
                (Kind::Domain, "evil.example"),
                (Kind::Ip, "198.51.100.9/32"),
                (Kind::Url, "https://evil.example/a"),
            ]
        );
        assert_eq!(l.skipped.len(), 2);
    }
}
