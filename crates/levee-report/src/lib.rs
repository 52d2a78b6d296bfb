//! The incident report for the national CERT and the data-protection
//! regulator, built from an incident record (`levee_incident::Summary`)
//! and, optionally, `levee hunt --json` findings of the same period.
//!
//! [`build`] makes one [`Report`]: the timeline, the attack's nature and
//! vectors (ATT&CK T1498/T1499, ENISA RSIT `availability:ddos`), peaks and
//! duration, the impact on the service in CISA's and the ICO's terms, the
//! measures taken, the indicators, the challenge funnel, and the personal
//! data part (GDPR Art. 33): whether hunt found compromise or exfiltration,
//! the categories (special categories from the routes' tags), the 72-hour
//! clock, the likely consequences and the ICO form's fields, each filled
//! from the data or marked "to complete". Renderers: [`markdown`],
//! [`html`] (self-contained, printable, SVG charts), JSON (the `Report`
//! itself) and [`stix::bundle`] (STIX 2.1).
//!
//! The report never claims what was not measured: without hunt findings the
//! personal-data question is "not assessed", and "no exfiltration found"
//! names the logs, rules and indicators that were checked. Client addresses
//! are pseudonymised with the same keyed HMAC as `levee hunt
//! --pseudonymize`, everywhere in the text, unless raw addresses are asked
//! for. Pure: no I/O; the time of writing is a parameter.

#![forbid(unsafe_code)]

mod forms;
pub mod hunt;
mod ledger;
mod render;
mod scrub;
pub mod stix;

pub use ledger::cite_ledger;
pub use render::{html, markdown};

use forms::{ico_form, ncsc, personal_data};

use levee_incident::{Second, Summary};
use serde::Serialize;

/// The version of the JSON format.
pub const FORMAT: &str = "levee-incident-report/1";

/// How client addresses appear in the report.
pub enum Addresses {
    /// As they are (for a CSIRT under GDPR Recital 49).
    Raw,
    /// Keyed pseudonyms; `same_as_hunt` when the key is hunt's.
    Pseudonymised {
        key: levee_privacy::Pseudonymizer,
        same_as_hunt: bool,
    },
}

/// A route tagged in the edge's configuration.
#[derive(Debug, Clone, Default)]
pub struct RouteTag {
    pub site: String,
    pub name: String,
    pub paths: Vec<String>,
    pub personal: bool,
    pub special: Vec<String>,
    pub export: bool,
}

/// An entry of the retention ledger the report cites.
#[derive(Debug, Clone, Serialize)]
pub struct LedgerCite {
    pub line: usize,
    pub ts_ms: u64,
    pub action: String,
    pub subject: String,
    pub hash: String,
}

/// What the retention ledger says about the incident's records.
#[derive(Debug, Clone, Serialize)]
pub struct Ledger {
    pub path: String,
    /// `Ok` (and the chain's last hash) or why it does not verify.
    pub verified: Result<String, String>,
    pub entries: usize,
    pub cited: Vec<LedgerCite>,
}

/// Everything the report is made from.
pub struct Input {
    pub incident: Summary,
    /// Where the incident was read from.
    pub incident_file: String,
    pub hunt: Option<hunt::Hunt>,
    pub hunt_file: Option<String>,
    pub routes: Vec<RouteTag>,
    pub ledger: Option<Ledger>,
    pub addresses: Addresses,
    /// The reporting organisation (`to complete` when unknown).
    pub organisation: Option<String>,
    /// Unix ms at which the report is written.
    pub now_ms: u64,
}

/// One answer of a form: filled from the data, or left to a person.
#[derive(Debug, Clone, Serialize)]
pub struct Field {
    pub question: String,
    pub answer: String,
    /// `filled` (from measurements), or `to complete`.
    pub status: &'static str,
}

fn filled(q: &str, a: String) -> Field {
    Field {
        question: q.into(),
        answer: a,
        status: "filled",
    }
}

fn to_complete(q: &str, hint: &str) -> Field {
    Field {
        question: q.into(),
        answer: hint.into(),
        status: "to complete",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct At {
    pub t_ms: u64,
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Vector {
    pub action: String,
    pub dim: String,
    pub value: String,
    pub evidence: String,
    pub matches: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Peaks {
    pub requests_per_s: f64,
    pub requests_per_s_at_ms: u64,
    pub blocked_per_s: f64,
    pub origin_p99_ms: f64,
    pub origin_p99_at_ms: u64,
    pub connections: f64,
    pub packet_filter_drops: u64,
    pub requests: u64,
    pub outcomes: std::collections::BTreeMap<String, u64>,
    pub duration_s: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    /// CISA functional impact.
    pub functional: String,
    /// The ICO form's impact on the organisation.
    pub ico_impact: String,
    /// CISA / ICO recoverability.
    pub recoverability: String,
    pub success_before: f64,
    pub success_during: f64,
    pub p99_before_ms: f64,
    pub p99_during_ms: f64,
    pub statement: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Exfil {
    pub detector: String,
    pub level: String,
    pub client: String,
    pub records: u64,
    pub bytes: u64,
    pub routes: Vec<String>,
    pub categories: Vec<String>,
    pub summary: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PersonalData {
    /// Whether hunt findings were given.
    pub assessed: bool,
    /// `found`, `none found`, or `not assessed`.
    pub verdict: String,
    pub conclusion: String,
    pub checked: Vec<String>,
    pub exfiltration: Vec<Exfil>,
    pub compromise: Vec<hunt_hit::Hit>,
    /// Sigma rules that matched, for review (each with its author:
    /// Detection Rule License).
    pub rule_findings: Vec<hunt_hit::RuleHit>,
    pub records_estimate: u64,
    pub subjects_estimate: u64,
    pub categories: Vec<String>,
    pub special_categories: Vec<String>,
    pub detected_ms: u64,
    pub deadline_ms: u64,
    pub hours_left: f64,
    pub notify: String,
    pub consequences: Vec<String>,
    pub tell_the_regulator: Vec<String>,
}

/// Hunt's IoC hits as the report shows them.
pub mod hunt_hit {
    #[derive(Debug, Clone, serde::Serialize)]
    pub struct Hit {
        pub kind: String,
        pub value: String,
        pub source: String,
        pub count: u64,
        pub first_ms: i64,
        pub last_ms: i64,
    }

    #[derive(Debug, Clone, serde::Serialize)]
    pub struct RuleHit {
        pub title: String,
        pub level: String,
        pub author: String,
        pub count: u64,
        pub clients: u64,
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Indicators {
    /// Blocked source prefixes (never the merely rate-limited).
    pub attackers: Vec<levee_incident::Source>,
    /// Heavy prefixes that were not blocked (not called attackers).
    pub other_sources: usize,
    pub signatures: Vec<Vector>,
    pub note: String,
}

/// The report, as its JSON form (`FORMAT`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub format: &'static str,
    pub generated_ms: u64,
    pub organisation: Option<String>,
    pub incident_file: String,
    pub hunt_file: Option<String>,
    pub id: String,
    pub site: String,
    pub edge: String,
    pub opened_ms: u64,
    pub closed_ms: Option<u64>,
    pub mode: String,
    pub why: String,
    pub addresses: String,
    pub raw_addresses: bool,
    pub summary: String,
    pub timeline: Vec<At>,
    pub attack_patterns: Vec<(String, String)>,
    pub taxonomy: Vec<String>,
    pub vectors: Vec<Vector>,
    pub peaks: Peaks,
    pub impact: Impact,
    pub measures: Vec<At>,
    pub indicators: Indicators,
    pub funnel: levee_incident::Funnel,
    pub personal_data: PersonalData,
    pub ico_form: Vec<Field>,
    pub ncsc: Vec<Field>,
    pub ledger: Option<Ledger>,
    pub problems: Vec<String>,
    pub series: Vec<Second>,
}

/// `2026-12-01T21:25:10Z`.
pub fn fmt_ms(ms: u64) -> String {
    match jiff::Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX)) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("{ms} ms"),
    }
}

fn fmt_dur(s: u64) -> String {
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn evidence_of(rule: &serde_json::Value) -> String {
    let e = &rule["evidence"];
    let pct = |k: &str| e[k].as_f64().map(|v| format!("{:.0}%", v * 100.0));
    let mut parts = Vec::new();
    if let Some(v) = pct("attack_share") {
        parts.push(format!("{v} of attack traffic"));
    }
    if let Some(v) = pct("baseline_share") {
        parts.push(format!("{v} of normal traffic"));
    }
    if let Some(v) = e["rate"].as_f64() {
        parts.push(format!("at {v:.0} req/s"));
    }
    if let Some(v) = e["baseline_rate"].as_f64() {
        parts.push(format!("baseline {v:.0} req/s"));
    }
    if let Some(v) = e["sampled"].as_u64() {
        parts.push(format!("{v} requests sampled"));
    }
    parts.join(", ")
}

fn vector_of(rule: &serde_json::Value, scrub: &dyn Fn(&str) -> String) -> Vector {
    Vector {
        action: rule["action"].as_str().unwrap_or("?").into(),
        dim: rule["dim"].as_str().unwrap_or("?").into(),
        value: scrub(rule["value"].as_str().unwrap_or("")),
        evidence: evidence_of(rule),
        matches: rule["matches"].as_u64().unwrap_or(0),
    }
}

/// What an event says, in a sentence.
fn event_text(e: &serde_json::Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
    match e["event"].as_str().unwrap_or("") {
        "mode" => format!("mode {} → {}: {}", s("from"), s("to"), s("why")),
        "rule_added" => format!(
            "rule added ({} on {}): {}",
            e["rule"]["action"].as_str().unwrap_or("?"),
            e["rule"]["dim"].as_str().unwrap_or("?"),
            e["rule"]["value"].as_str().unwrap_or("")
        ),
        "rule_expired" => format!(
            "rule expired after {} matches: {}",
            e["rule"]["matches"].as_u64().unwrap_or(0),
            e["rule"]["value"].as_str().unwrap_or("")
        ),
        "rule_dropped" => format!(
            "rule dropped by an operator: {}",
            e["rule"]["value"].as_str().unwrap_or("")
        ),
        "block" | "auto_block" => format!("blocked {} ({})", s("cidr"), s("why")),
        "unblock" => format!("unblocked {}", s("cidr")),
        "pin" => format!("mode pinned by an operator: {}", e["mode"]),
        "knobs" if e["tightened"] == true => "connection limits tightened".into(),
        "knobs" => "connection limits restored".into(),
        "shed" => format!("requests shed for origin capacity: {}", e),
        "incident_opened" => format!("incident {} opened", s("id")),
        "" => e.to_string(),
        k => {
            let mut o = e.clone();
            if let Some(m) = o.as_object_mut() {
                for x in ["event", "seq", "ts_ms", "site"] {
                    m.remove(x);
                }
            }
            format!("{k} {o}")
        }
    }
}

/// The report of `input`.
pub fn build(input: Input) -> Report {
    let inc = &input.incident;
    let scrubber = scrub::Scrubber::new(&input.addresses);
    let sc = |t: &str| scrubber.text(t);
    let mut timeline: Vec<At> = Vec::new();
    timeline.push(At {
        t_ms: inc.opened_unix_ms,
        what: format!(
            "incident opened: site left normal for {}: {}",
            inc.mode, inc.why
        ),
    });
    let mut measures: Vec<At> = Vec::new();
    for e in inc.modes.iter().chain(&inc.vectors).chain(&inc.actions) {
        let t_ms = e["ts_ms"].as_u64().unwrap_or(inc.opened_unix_ms);
        let what = sc(&event_text(e));
        let kind = e["event"].as_str().unwrap_or("");
        if kind != "incident_opened" {
            timeline.push(At {
                t_ms,
                what: what.clone(),
            });
        }
        if matches!(
            kind,
            "rule_added"
                | "rule_dropped"
                | "block"
                | "auto_block"
                | "pin"
                | "knobs"
                | "shed"
                | "unblock"
        ) || (kind == "mode" && e["to"] != "normal")
        {
            measures.push(At { t_ms, what });
        }
    }
    if let Some(c) = inc.closed_unix_ms {
        timeline.push(At {
            t_ms: c,
            what: "incident closed: the site was calm for the cooldown".into(),
        });
    }
    timeline.sort_by_key(|a| a.t_ms);
    measures.sort_by_key(|a| a.t_ms);
    // A rule's matches grow until it expires: take its last word.
    let matches_of = |rule: &serde_json::Value| {
        inc.vectors
            .iter()
            .chain(&inc.actions)
            .filter(|e| e["rule"]["id"] == rule["id"])
            .filter_map(|e| e["rule"]["matches"].as_u64())
            .max()
            .unwrap_or(0)
    };
    let vectors: Vec<Vector> = inc
        .vectors
        .iter()
        .map(|e| Vector {
            matches: matches_of(&e["rule"]),
            ..vector_of(&e["rule"], &sc)
        })
        .collect();
    let xdp: u64 = inc.series.iter().map(|s| s.xdp_drops).sum();
    let peaks = Peaks {
        requests_per_s: inc.peak_rps.value,
        requests_per_s_at_ms: inc.peak_rps.t * 1000,
        blocked_per_s: inc.peak_blocked_rps.value,
        origin_p99_ms: inc.peak_p99_ms.value,
        origin_p99_at_ms: inc.peak_p99_ms.t * 1000,
        connections: inc.peak_conns.value,
        packet_filter_drops: xdp,
        requests: inc.requests,
        outcomes: inc.outcomes.clone(),
        duration_s: inc.duration_s,
    };
    let impact = impact_of(inc);
    let mut attack_patterns = vec![(
        "T1499.002".to_string(),
        "Endpoint Denial of Service: Service Exhaustion Flood".to_string(),
    )];
    if xdp > 0 || inc.outcomes.get("cut").copied().unwrap_or(0) > 0 {
        attack_patterns.push((
            "T1498.001".into(),
            "Network Denial of Service: Direct Network Flood".into(),
        ));
    }
    if vectors.iter().any(|v| v.dim == "path" || v.dim == "combo") {
        attack_patterns.push((
            "T1499.003".into(),
            "Endpoint Denial of Service: Application Exhaustion Flood".into(),
        ));
    }
    let raw = matches!(input.addresses, Addresses::Raw);
    let attackers: Vec<levee_incident::Source> = inc
        .attackers
        .iter()
        .map(|a| levee_incident::Source {
            prefix: sc(&a.prefix),
            ..a.clone()
        })
        .collect();
    let indicators = Indicators {
        other_sources: inc.top_sources.len() - inc.attackers.len().min(inc.top_sources.len()),
        attackers,
        signatures: vectors.clone(),
        note: "Source prefixes are listed as attackers only when the edge blocked them; prefixes that were only rate-limited or challenged may be legitimate visitors and are not listed.".into(),
    };
    let personal = personal_data(&input, &sc);
    let addresses = match &input.addresses {
        Addresses::Raw => "raw (as the edge saw them; share only as GDPR Recital 49 allows, e.g. with a CSIRT)".to_string(),
        Addresses::Pseudonymised { same_as_hunt: true, .. } => "pseudonymised with HMAC-SHA-256 under the key given (--key), the same pseudonyms as levee hunt --pseudonymize with that key".into(),
        Addresses::Pseudonymised { .. } => "pseudonymised with HMAC-SHA-256 under a key drawn for this report only (give --key with levee hunt's key to match its pseudonyms, or --raw-addresses)".into(),
    };
    let summary = format!(
        "Denial-of-service attack on site {:?} from {} for {}: peak {:.0} req/s at {}, {} requests in all, of which {} were refused or held by the edge. {}",
        inc.site,
        fmt_ms(inc.opened_unix_ms),
        fmt_dur(inc.duration_s),
        peaks.requests_per_s,
        fmt_ms(peaks.requests_per_s_at_ms),
        inc.requests,
        inc.requests
            .saturating_sub(inc.outcomes.get("origin").copied().unwrap_or(0))
            .saturating_sub(inc.outcomes.get("cache").copied().unwrap_or(0))
            .saturating_sub(inc.outcomes.get("solved").copied().unwrap_or(0)),
        impact.statement
    );
    let ico_form = ico_form(&input, &impact, &personal, &summary);
    let ncsc = ncsc(&input, &summary, &measures);
    Report {
        format: FORMAT,
        generated_ms: input.now_ms,
        organisation: input.organisation.clone(),
        incident_file: input.incident_file.clone(),
        hunt_file: input.hunt_file.clone(),
        id: inc.id.clone(),
        site: inc.site.clone(),
        edge: inc.edge.clone(),
        opened_ms: inc.opened_unix_ms,
        closed_ms: inc.closed_unix_ms,
        mode: inc.mode.clone(),
        why: sc(&inc.why),
        addresses,
        raw_addresses: raw,
        summary,
        timeline,
        attack_patterns,
        taxonomy: vec![
            "rsit:availability=\"ddos\"".into(),
            "ncsc: malicious disruption / denial of service".into(),
        ],
        vectors,
        peaks,
        impact,
        measures,
        indicators,
        funnel: inc.funnel.clone(),
        personal_data: personal,
        ico_form,
        ncsc,
        ledger: input.ledger.clone(),
        problems: inc.problems.clone(),
        series: inc.series.clone(),
    }
}

fn impact_of(inc: &Summary) -> Impact {
    let f = &inc.felt;
    let worse_latency = f.p99_ms > (f.before.p99_ms * 3.0).max(f.before.p99_ms + 200.0);
    let (functional, ico) = if f.success >= 0.99 && !worse_latency {
        (
            "NO IMPACT: the service answered legitimate requests as before",
            "Low",
        )
    } else if f.success >= 0.95 {
        (
            "MINIMAL IMPACT to the service: slower answers or a few errors",
            "Low",
        )
    } else if f.success >= 0.5 {
        (
            "SIGNIFICANT IMPACT to the service: many requests failed",
            "Medium",
        )
    } else {
        (
            "DENIAL OF SERVICE: most requests that reached the site failed",
            "High",
        )
    };
    let recoverability = if inc.closed_unix_ms.is_some() {
        "REGULAR: the service returned to normal with the edge's own measures (confirm that no manual recovery was needed)"
    } else {
        "NOT YET KNOWN: the incident was still open when the record was read"
    };
    Impact {
        functional: functional.into(),
        ico_impact: ico.into(),
        recoverability: recoverability.into(),
        success_before: f.before.success,
        success_during: f.success,
        p99_before_ms: f.before.p99_ms,
        p99_during_ms: f.p99_ms,
        statement: format!(
            "Requests that reached the site succeeded {:.1}% of the time (before the attack: {:.1}%); the origin's worst per-second p99 was {:.0} ms (before: {:.0} ms).",
            f.success * 100.0,
            f.before.success * 100.0,
            f.p99_ms,
            f.before.p99_ms
        ),
    }
}
