//! The Local API's decision stream (`GET /v1/decisions/stream`): an answer
//! `{"new": [...], "deleted": [...]}` (either may be `null`) parsed whole,
//! so that a malformed answer is refused as a whole and never applied in
//! part. Decisions of a type or scope the edge cannot act on (`throttle`,
//! a country, an AS) are skipped and counted, by their reason.

use std::net::IpAddr;
use std::time::Duration;

/// What the edge does with a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Refuse the client (block list, packet filter).
    Ban,
    /// Send the client to the challenge.
    Captcha,
}

/// One decision the edge can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub kind: Kind,
    pub addr: IpAddr,
    pub len: u8,
    /// Time left (zero for a deleted decision whose duration was negative).
    pub ttl: Duration,
    pub origin: String,
    pub scenario: String,
}

/// One answer of the stream.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delta {
    pub new: Vec<Decision>,
    pub deleted: Vec<Decision>,
    /// Decisions not acted on, with why (type or scope).
    pub skipped: Vec<String>,
}

/// Why an answer was refused; nothing of it was applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StreamError {
    #[error("not a JSON object of decisions: {0}")]
    Json(String),
    #[error("{list}[{index}]: {why}")]
    Decision {
        list: &'static str,
        index: usize,
        why: String,
    },
    #[error("more than {0} decisions in one answer")]
    TooMany(usize),
}

#[derive(serde::Deserialize)]
struct Raw {
    new: Option<Vec<RawDecision>>,
    deleted: Option<Vec<RawDecision>>,
}

#[derive(serde::Deserialize)]
struct RawDecision {
    #[serde(rename = "type")]
    kind: String,
    scope: String,
    value: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    origin: String,
    #[serde(default)]
    scenario: String,
}

/// A Go duration (`3h59m58.123s`, `-1.5s`, `150ms`); negative is zero.
pub fn go_duration(s: &str) -> Option<Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|&n| n > 0)?;
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..u] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[u..];
        total += v * unit;
    }
    if !total.is_finite() || total > 1e10 {
        return None;
    }
    Some(if neg {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(total)
    })
}

fn address(scope: &str, value: &str) -> Result<Option<(IpAddr, u8)>, String> {
    match scope.to_ascii_lowercase().as_str() {
        "ip" => value
            .trim()
            .parse::<IpAddr>()
            .map(|a| Some((a, if a.is_ipv4() { 32 } else { 128 })))
            .map_err(|_| format!("{value:?} is not an IP address")),
        "range" => {
            let (a, l) = value
                .trim()
                .split_once('/')
                .ok_or_else(|| format!("{value:?} is not a range (ADDRESS/LENGTH)"))?;
            let a: IpAddr = a
                .parse()
                .map_err(|_| format!("{value:?} is not a range (ADDRESS/LENGTH)"))?;
            let l: u8 = l
                .parse()
                .ok()
                .filter(|l| *l <= if a.is_ipv4() { 32 } else { 128 })
                .ok_or_else(|| format!("{value:?}: the prefix length is out of range"))?;
            Ok(Some((a, l)))
        }
        _ => Ok(None),
    }
}

/// Parse one answer; at most `max` decisions in it.
pub fn parse(body: &[u8], max: usize) -> Result<Delta, StreamError> {
    let raw: Raw = serde_json::from_slice(body).map_err(|e| StreamError::Json(e.to_string()))?;
    let (new, deleted) = (raw.new.unwrap_or_default(), raw.deleted.unwrap_or_default());
    if new.len().saturating_add(deleted.len()) > max {
        return Err(StreamError::TooMany(max));
    }
    let mut out = Delta::default();
    for (list, items, is_new) in [("new", new, true), ("deleted", deleted, false)] {
        for (index, d) in items.into_iter().enumerate() {
            let err = |why: String| StreamError::Decision { list, index, why };
            let kind = match d.kind.to_ascii_lowercase().as_str() {
                "ban" => Kind::Ban,
                "captcha" => Kind::Captcha,
                other => {
                    out.skipped.push(format!("type {other:?}"));
                    continue;
                }
            };
            let Some((addr, len)) = address(&d.scope, &d.value).map_err(err)? else {
                out.skipped.push(format!("scope {:?}", d.scope));
                continue;
            };
            let ttl = match go_duration(&d.duration) {
                Some(t) => t,
                None if !is_new => Duration::ZERO,
                None => return Err(err(format!("{:?} is not a duration", d.duration))),
            };
            let dec = Decision {
                kind,
                addr,
                len,
                ttl,
                origin: d.origin,
                scenario: d.scenario,
            };
            if is_new {
                out.new.push(dec);
            } else {
                out.deleted.push(dec);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(
            go_duration("59m59.5s"),
            Some(Duration::from_secs_f64(3599.5))
        );
        assert_eq!(go_duration("3h59m58s"), Some(Duration::from_secs(14398)));
        assert_eq!(go_duration("150ms"), Some(Duration::from_millis(150)));
        assert_eq!(go_duration("-1.5s"), Some(Duration::ZERO));
        assert_eq!(go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "5", "h", "5x", "1e400s", "--1s", "1..2s"] {
            assert_eq!(go_duration(bad), None, "{bad:?}");
        }
    }

    /// The Local API's own answer (crowdsec 1.4.6), and deletions.
    #[test]
    fn the_local_apis_answer() {
        let body = br#"{"deleted":null,"new":[{"duration":"59m59.103660774s","id":1,"origin":"cscli","scenario":"manual 'ban' from 'test'","scope":"Ip","type":"ban","value":"127.0.0.9"},{"duration":"4h","id":2,"origin":"CAPI","scenario":"crowdsecurity/http-probing","scope":"Range","type":"captcha","value":"198.51.100.0/24"},{"duration":"4h","id":3,"origin":"cscli","scenario":"x","scope":"Country","type":"ban","value":"FR"},{"duration":"4h","id":4,"origin":"cscli","scenario":"x","scope":"Ip","type":"throttle","value":"192.0.2.1"}]}"#;
        let d = parse(body, 100).unwrap();
        assert_eq!(d.new.len(), 2);
        assert_eq!(d.new[0].kind, Kind::Ban);
        assert_eq!(d.new[0].addr.to_string(), "127.0.0.9");
        assert_eq!(d.new[0].len, 32);
        assert!(d.new[0].ttl > Duration::from_secs(3590));
        assert_eq!((d.new[1].kind, d.new[1].len), (Kind::Captcha, 24));
        assert_eq!(d.skipped, vec!["scope \"Country\"", "type \"throttle\""]);
        let del = parse(br#"{"new":null,"deleted":[{"duration":"-3.2s","scope":"ip","type":"ban","value":"::1"}]}"#, 10).unwrap();
        assert_eq!(del.deleted[0].len, 128);
        assert_eq!(del.deleted[0].ttl, Duration::ZERO);
        assert_eq!(parse(b"{}", 1).unwrap(), Delta::default());
    }

    /// A malformed answer is refused whole, saying where.
    #[test]
    fn malformed_answers_are_refused_whole() {
        for (body, want) in [
            (&b"<html>"[..], "not a JSON object"),
            (b"[1,2]", "not a JSON object"),
            (br#"{"new":[{"type":"ban","scope":"Ip","value":"1.2.3.4","duration":"1h"},{"type":"ban","scope":"Ip","value":"1.2.3.999","duration":"1h"}]}"#, "new[1]: \"1.2.3.999\" is not an IP address"),
            (br#"{"new":[{"type":"ban","scope":"Range","value":"10.0.0.0/33","duration":"1h"}]}"#, "new[0]: \"10.0.0.0/33\": the prefix length"),
            (br#"{"new":[{"type":"ban","scope":"Ip","value":"1.2.3.4","duration":"soon"}]}"#, "new[0]: \"soon\" is not a duration"),
            (br#"{"new":[{"scope":"Ip","value":"1.2.3.4"}]}"#, "not a JSON object"),
        ] {
            let e = parse(body, 100).unwrap_err().to_string();
            assert!(e.contains(want), "{e} / {want}");
        }
        let many = format!(
            "{{\"new\":[{}]}}",
            [r#"{"type":"ban","scope":"Ip","value":"1.2.3.4","duration":"1h"}"#; 3].join(",")
        );
        assert_eq!(parse(many.as_bytes(), 2), Err(StreamError::TooMany(2)));
    }
}
