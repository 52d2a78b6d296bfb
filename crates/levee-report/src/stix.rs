//! The report as a STIX 2.1 bundle, for a CSIRT: an `identity` (the
//! reporter), the `incident`, `attack-pattern`s (ATT&CK T1498/T1499),
//! `indicator`s with `sighting`s for the blocked sources (raw addresses
//! only: a pseudonym is no pattern), the signatures the edge derived and
//! hunt's IoC hits, a `course-of-action` for the measures, the
//! relationships between them and a `report` that names them all, every
//! object marked TLP:AMBER. Ids are version-4-shaped UUIDs drawn from a
//! hash of the incident and the object, so that the same record gives the
//! same bundle.

use crate::{fmt_ms, Report};
use serde_json::{json, Value};

/// TLP:AMBER, as STIX 2.1 predefines it.
pub const TLP_AMBER: &str = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82";

fn id(kind: &str, incident: &str, key: &str) -> String {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{incident}\u{0}{kind}\u{0}{key}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = levee_privacy::ledger::hex(&b);
    format!(
        "{kind}--{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

fn ts(ms: u64) -> String {
    match jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => "1970-01-01T00:00:00.000Z".into(),
    }
}

/// A STIX pattern's string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// The pattern of a signature the edge derived, where STIX has one.
fn signature_pattern(dim: &str, value: &str) -> Option<String> {
    let ua = |u: &str| {
        format!(
            "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = {}]",
            lit(u)
        )
    };
    match dim {
        "ua" => Some(ua(value)),
        "path" => Some(format!(
            "[network-traffic:extensions.'http-request-ext'.request_value = {}]",
            lit(value)
        )),
        "combo" => {
            // `GET / ua="…" headers=…`: the User-Agent part, when there is one.
            let start = value.find("ua=\"")? + 4;
            let end = start
                + value[start..]
                    .find("\" headers=")
                    .or_else(|| value[start..].rfind('"'))?;
            Some(ua(&value[start..end]))
        }
        _ => None,
    }
}

fn ip_pattern(prefix: &str) -> Option<String> {
    let addr = prefix.split('/').next()?;
    let ip: std::net::IpAddr = addr.parse().ok()?;
    Some(match ip {
        std::net::IpAddr::V4(_) => format!("[ipv4-addr:value = {}]", lit(prefix)),
        std::net::IpAddr::V6(_) => format!("[ipv6-addr:value = {}]", lit(prefix)),
    })
}

fn ioc_pattern(kind: &str, value: &str) -> Option<String> {
    match kind {
        "ip" => ip_pattern(value),
        "domain" => Some(format!("[domain-name:value = {}]", lit(value))),
        "url" => Some(format!("[url:value = {}]", lit(value))),
        "user-agent" => signature_pattern("ua", value),
        "filename" => Some(format!("[file:name = {}]", lit(value))),
        "hash" => {
            let algo = match value.len() {
                32 => "MD5",
                40 => "SHA-1",
                64 => "SHA-256",
                _ => return None,
            };
            Some(format!(
                "[file:hashes.'{algo}' = {}]",
                lit(&value.to_ascii_lowercase())
            ))
        }
        _ => None,
    }
}

/// The bundle of `r`.
pub fn bundle(r: &Report) -> Value {
    let inc = &r.id;
    let now = ts(r.generated_ms);
    let marking = json!([TLP_AMBER]);
    let identity_id = id("identity", inc, "reporter");
    let base = |kind: &str, key: &str| -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("type".into(), kind.into());
        m.insert("spec_version".into(), "2.1".into());
        m.insert("id".into(), id(kind, inc, key).into());
        m.insert("created".into(), now.clone().into());
        m.insert("modified".into(), now.clone().into());
        m.insert("created_by_ref".into(), identity_id.clone().into());
        m.insert("object_marking_refs".into(), marking.clone());
        m
    };
    let mut objects: Vec<Value> = Vec::new();
    let mut identity = base("identity", "reporter");
    identity.remove("created_by_ref");
    identity.insert(
        "name".into(),
        r.organisation
            .clone()
            .unwrap_or_else(|| format!("Levee edge {} (site {})", r.edge, r.site))
            .into(),
    );
    identity.insert("identity_class".into(), "organization".into());
    objects.push(Value::Object(identity));
    let first = ts(r.opened_ms);
    let last = ts(r.closed_ms.unwrap_or(r.generated_ms).max(r.opened_ms));
    let mut incident = base("incident", "incident");
    incident.insert(
        "name".into(),
        format!("Denial-of-service attack on {} ({})", r.site, r.id).into(),
    );
    incident.insert("description".into(), r.summary.clone().into());
    objects.push(Value::Object(incident));
    let mut patterns = Vec::new();
    for (tid, name) in &r.attack_patterns {
        let mut a = base("attack-pattern", tid);
        a.insert("name".into(), name.clone().into());
        a.insert(
            "external_references".into(),
            json!([{"source_name": "mitre-attack", "external_id": tid}]),
        );
        patterns.push(a["id"].clone());
        objects.push(Value::Object(a));
    }
    let mut indicators: Vec<(Value, u64, String)> = Vec::new();
    let mut indicator =
        |key: &str, name: String, pattern: String, count: u64, description: String| {
            let mut i = base("indicator", key);
            i.insert("name".into(), name.into());
            i.insert("description".into(), description.into());
            i.insert("indicator_types".into(), json!(["malicious-activity"]));
            i.insert("pattern".into(), pattern.into());
            i.insert("pattern_type".into(), "stix".into());
            i.insert("valid_from".into(), first.clone().into());
            let iid = i["id"].clone();
            objects.push(Value::Object(i));
            indicators.push((iid, count, key.to_string()));
        };
    if r.raw_addresses {
        for a in &r.indicators.attackers {
            if let Some(p) = ip_pattern(&a.prefix) {
                indicator(
                    &format!("source:{}", a.prefix),
                    format!("Blocked source {}", a.prefix),
                    p,
                    a.blocked.max(1),
                    format!("{} requests, {} refused by a block", a.requests, a.blocked),
                );
            }
        }
    }
    for v in &r.vectors {
        if let Some(p) = signature_pattern(&v.dim, &v.value) {
            indicator(
                &format!("signature:{}:{}", v.dim, v.value),
                format!("Signature the edge derived ({} on {})", v.action, v.dim),
                p,
                v.matches.max(1),
                format!("{}; evidence: {}", v.value, v.evidence),
            );
        }
    }
    for c in &r.personal_data.compromise {
        if c.kind == "ip" && !r.raw_addresses {
            continue;
        }
        if let Some(p) = ioc_pattern(&c.kind, &c.value) {
            indicator(
                &format!("ioc:{}:{}", c.kind, c.value),
                format!("Known indicator seen in the logs ({})", c.kind),
                p,
                c.count.max(1),
                format!("from {}; seen by levee hunt", c.source),
            );
        }
    }
    let mut refs: Vec<Value> = objects.iter().map(|o| o["id"].clone()).collect();
    for (iid, count, key) in &indicators {
        let mut s = base("sighting", key);
        s.insert("sighting_of_ref".into(), iid.clone());
        s.insert("count".into(), (*count).min(999_999_999).into());
        s.insert("first_seen".into(), first.clone().into());
        s.insert("last_seen".into(), last.clone().into());
        s.insert("where_sighted_refs".into(), json!([identity_id]));
        refs.push(s["id"].clone());
        objects.push(Value::Object(s));
        for p in &patterns {
            let mut rel = base("relationship", &format!("{key}->{p}"));
            rel.insert("relationship_type".into(), "indicates".into());
            rel.insert("source_ref".into(), iid.clone());
            rel.insert("target_ref".into(), p.clone());
            refs.push(rel["id"].clone());
            objects.push(Value::Object(rel));
        }
    }
    let mut coa = base("course-of-action", "measures");
    coa.insert("name".into(), "Measures taken by the edge".into());
    coa.insert(
        "description".into(),
        r.measures
            .iter()
            .map(|m| format!("{}: {}", fmt_ms(m.t_ms), m.what))
            .collect::<Vec<_>>()
            .join("\n")
            .into(),
    );
    let coa_id = coa["id"].clone();
    refs.push(coa_id.clone());
    objects.push(Value::Object(coa));
    for p in &patterns {
        let mut rel = base("relationship", &format!("measures->{p}"));
        rel.insert("relationship_type".into(), "mitigates".into());
        rel.insert("source_ref".into(), coa_id.clone());
        rel.insert("target_ref".into(), p.clone());
        refs.push(rel["id"].clone());
        objects.push(Value::Object(rel));
    }
    let mut report = base("report", "report");
    report.insert(
        "name".into(),
        format!("Incident report {} (site {})", r.id, r.site).into(),
    );
    report.insert(
        "description".into(),
        format!(
            "{} Addresses: {}.{}",
            r.summary,
            r.addresses,
            if r.raw_addresses { "" } else { " Source addresses are withheld from this bundle (pseudonymised report); give --raw-addresses to share them." }
        )
        .into(),
    );
    report.insert(
        "report_types".into(),
        json!(["attack-pattern", "indicator"]),
    );
    report.insert("published".into(), now.clone().into());
    report.insert("object_refs".into(), Value::Array(refs));
    objects.push(Value::Object(report));
    json!({
        "type": "bundle",
        "id": id("bundle", inc, &r.generated_ms.to_string()),
        "objects": objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v4_shaped_and_stable_and_patterns_are_quoted() {
        let a = id("indicator", "www-1", "x");
        assert_eq!(a, id("indicator", "www-1", "x"));
        assert_ne!(a, id("indicator", "www-1", "y"));
        let u = a.strip_prefix("indicator--").unwrap();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]));
        assert_eq!(
            signature_pattern("combo", "GET / ua=\"it's\" headers=host").unwrap(),
            "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = 'it\\'s']"
        );
        assert_eq!(signature_pattern("ja4", "t13d"), None);
        assert_eq!(ioc_pattern("hash", "ab"), None);
    }
}
