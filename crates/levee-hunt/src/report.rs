//! Outputs of a hunt: the timeline (JSON lines in Timesketch's format, or
//! CSV), the report (Markdown, or self-contained HTML with a chart), and
//! pseudonymisation of client addresses in all of them.

use crate::{fmt_ms, Summary, TimelineEvent};
use std::fmt::Write as _;

/// Keyed pseudonyms for addresses (HMAC-SHA-256, `levee_privacy`, the
/// same as the edge's pseudonymised access log), optionally keeping the /24
/// (IPv4) or /48 (IPv6) so that networks stay visible.
pub struct Pseudonymizer {
    inner: levee_privacy::Pseudonymizer,
}

impl Pseudonymizer {
    pub fn new(key: &[u8], keep_prefix: bool) -> Pseudonymizer {
        Pseudonymizer {
            inner: levee_privacy::Pseudonymizer::new(key, keep_prefix),
        }
    }

    /// The pseudonym of an address (other text is returned as it is).
    pub fn addr(&self, s: &str) -> String {
        self.inner.addr(s)
    }

    /// Replace every address in a text (log lines in samples).
    pub fn text(&self, t: &str) -> String {
        self.inner.text(t)
    }

    /// Pseudonymise a whole summary in place.
    pub fn summary(&self, s: &mut Summary) {
        for f in &mut s.findings {
            for x in &mut f.samples {
                x.text = self.text(&x.text);
            }
        }
        for f in &mut s.ioc_findings {
            for x in &mut f.samples {
                x.text = self.text(&x.text);
            }
            if f.kind == crate::ioc::Kind::Ip {
                // The indicator itself is public threat intelligence: kept.
            }
        }
        for c in &mut s.correlations {
            for h in &mut c.hits {
                for g in &mut h.group {
                    *g = self.addr(g);
                }
            }
        }
        for d in &mut s.detections {
            d.client = self.addr(&d.client);
            d.summary = self.text(&d.summary);
            for x in &mut d.samples {
                x.text = self.text(&x.text);
            }
        }
        for e in &mut s.timeline {
            e.client = self.text(&e.client);
            e.text = self.text(&e.text);
            if e.source == "correlation" {
                e.what = self.text(&e.what);
            }
        }
    }
}

fn iso(ms: i64) -> String {
    let base = fmt_ms(ms);
    format!(
        "{}.{:03}+00:00",
        base.trim_end_matches('Z'),
        ms.rem_euclid(1000)
    )
}

/// The timeline as JSON lines in Timesketch's import format
/// (`message`, `datetime`, `timestamp_desc`, plus attributes).
pub fn timeline_jsonl(events: &[TimelineEvent]) -> String {
    let mut out = String::new();
    for e in events {
        let v = serde_json::json!({
            "message": format!("[{}] {}", e.source, e.what),
            "datetime": iso(e.ts_ms),
            "timestamp": e.ts_ms * 1000,
            "timestamp_desc": if e.place.is_empty() { "Finding" } else { "Request" },
            "source": e.source,
            "level": e.level,
            "client": e.client,
            "log_place": e.place,
            "log_line": e.text,
        });
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The timeline as CSV.
pub fn timeline_csv(events: &[TimelineEvent]) -> String {
    let mut out = String::from("datetime,source,level,what,client,log_place,log_line\n");
    for e in events {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{}",
            iso(e.ts_ms),
            csv_field(&e.source),
            csv_field(&e.level),
            csv_field(&e.what),
            csv_field(&e.client),
            csv_field(&e.place),
            csv_field(&e.text)
        );
    }
    out
}

/// The statement of what was checked.
pub fn checked(s: &Summary) -> Vec<String> {
    let lines: u64 = s.files.iter().map(|f| f.lines).sum();
    let period = match (s.first_ms, s.last_ms) {
        (Some(a), Some(b)) => format!("from {} to {}", fmt_ms(a), fmt_ms(b)),
        _ => "(no records)".into(),
    };
    vec![
        format!(
            "{} log file(s), {lines} lines, {} requests {period}; {} malformed line(s) could not be read (listed in the JSON output).",
            s.files.len(),
            s.records,
            s.malformed
        ),
        format!(
            "{} Sigma rules for web servers and proxies and {} correlation rules; {} rule(s) could not be used.{}",
            s.rules_loaded,
            s.correlations_loaded,
            s.rules_failed.len(),
            match &s.rules_bundle {
                Some(b) => format!(
                    " Of them, {} bundled from SigmaHQ (snapshot of {}, commit {}, {}; each finding names its rule's author){}.",
                    s.rules_bundled,
                    b.date,
                    b.commit.get(..12).unwrap_or(&b.commit),
                    b.licence,
                    if s.rules_replaced > 0 {
                        format!(", {} bundled rule(s) replaced by a given rule with the same id", s.rules_replaced)
                    } else {
                        String::new()
                    }
                ),
                None => String::new(),
            }
        ),
        format!(
            "{} distinct indicators of compromise ({} read) from {} feed file(s); {} could not be used.",
            s.iocs_loaded,
            s.iocs_read,
            s.ioc_files.len(),
            s.iocs_skipped.len()
        ),
        "Detectors: egress outliers, sequential ID enumeration, bulk access to personal data, exports without login, probing, off-hours use of admin and personal-data routes.".into(),
    ]
}

/// The one-sentence conclusion an organisation can give its regulator.
pub fn conclusion(s: &Summary) -> String {
    let exfil: Vec<&crate::detect::Finding> = s
        .detections
        .iter()
        .filter(|d| {
            matches!(
                d.detector,
                "egress_outlier" | "personal_data_bulk" | "export_without_login" | "bulk_download"
            ) || (d.detector == "id_enumeration" && d.records_served > 0)
        })
        .collect();
    let period = match (s.first_ms, s.last_ms) {
        (Some(a), Some(b)) => format!("{} to {}", fmt_ms(a), fmt_ms(b)),
        _ => "the period given".into(),
    };
    if exfil.is_empty() && s.ioc_findings.is_empty() {
        format!(
            "No indicator of exfiltration and no sighting of a known indicator of compromise in these logs for {period}, checked against {} IoCs and {} rules ({} Sigma findings listed below for review).",
            s.iocs_loaded,
            s.rules_loaded + s.correlations_loaded,
            s.findings.len() + s.correlations.len()
        )
    } else {
        // Per client, the largest of its findings' counts (several findings
        // about one download must not add up to more than was served).
        let mut per: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
        for d in &exfil {
            let e = per.entry(d.client.as_str()).or_default();
            e.0 = e.0.max(d.records_served);
            e.1 = e.1.max(d.bytes_served);
        }
        let records: u64 = per.values().map(|x| x.0).sum();
        let bytes: u64 = per.values().map(|x| x.1).sum();
        format!(
            "Possible exfiltration or compromise in these logs for {period}: {} exfiltration finding(s) (about {records} records and {} MiB served) and {} indicator(s) of compromise seen; checked against {} IoCs and {} rules.",
            exfil.len(),
            bytes >> 20,
            s.ioc_findings.len(),
            s.iocs_loaded,
            s.rules_loaded + s.correlations_loaded
        )
    }
}

/// The report in Markdown.
pub fn markdown(s: &Summary) -> String {
    let mut o = String::from("# Log review after an attack\n\n");
    let _ = writeln!(o, "**Conclusion.** {}\n", conclusion(s));
    o.push_str("## What was checked\n\n");
    for l in checked(s) {
        let _ = writeln!(o, "- {l}");
    }
    for f in &s.files {
        let _ = writeln!(
            o,
            "  - `{}`: {} lines, {} requests, {} malformed, {} outside the period",
            f.path, f.lines, f.records, f.malformed, f.outside_period
        );
    }
    o.push_str("\n## What was found\n\n### Exfiltration and abuse detectors\n\n");
    if s.detections.is_empty() {
        o.push_str("Nothing.\n");
    } else {
        o.push_str("| level | detector | client | first | last | requests | records served | bytes served | summary | evidence |\n|---|---|---|---|---|---|---|---|---|---|\n");
        for d in &s.detections {
            let ev = d
                .samples
                .iter()
                .map(|x| format!("{}:{}", x.file, x.line))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                d.level,
                d.detector,
                d.client,
                fmt_ms(d.first_ms),
                fmt_ms(d.last_ms),
                d.requests,
                d.records_served,
                d.bytes_served,
                d.summary.replace('|', "\\|"),
                ev
            );
        }
    }
    o.push_str("\n### Indicators of compromise seen\n\n");
    if s.ioc_findings.is_empty() {
        o.push_str("None.\n");
    } else {
        for f in &s.ioc_findings {
            let _ = writeln!(
                o,
                "- {:?} `{}` (from {}), seen in {}: {} request(s) from {} client(s), {} to {}",
                f.kind,
                f.value,
                f.source,
                f.fields.join(", "),
                f.count,
                f.clients,
                fmt_ms(f.first_ms),
                fmt_ms(f.last_ms)
            );
        }
    }
    o.push_str("\n### Sigma rules\n\n");
    if s.findings.is_empty() && s.correlations.is_empty() {
        o.push_str("No rule matched.\n");
    }
    for c in &s.correlations {
        let _ = writeln!(
            o,
            "- **{}** (correlation {}, level {}, author: {}): {} group(s)",
            c.title,
            c.kind,
            c.level,
            c.author,
            c.hits.len()
        );
    }
    if !s.findings.is_empty() {
        o.push_str("| level | rule | author | hits | clients | first | last | example |\n|---|---|---|---|---|---|---|---|\n");
        for f in &s.findings {
            let ex = f
                .samples
                .first()
                .map(|x| format!("{}:{}", x.file, x.line))
                .unwrap_or_default();
            let _ = writeln!(
                o,
                "| {} | {} (`{}`) | {} | {} | {} | {} | {} | {} |",
                f.level,
                f.title.replace('|', "\\|"),
                f.rule_id,
                f.author.replace('|', "\\|"),
                f.count,
                f.clients,
                fmt_ms(f.first_ms),
                fmt_ms(f.last_ms),
                ex
            );
        }
    }
    o.push_str("\nSigma rules: SigmaHQ and contributors, Detection Rule License 1.1; each finding names its rule's author.\n");
    o
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Matched requests and findings per hour, as an inline SVG bar chart.
pub fn chart(events: &[TimelineEvent]) -> String {
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return String::new();
    };
    let hour = 3_600_000;
    let start = first.ts_ms.div_euclid(hour);
    let n = ((last.ts_ms.div_euclid(hour) - start) + 1).clamp(1, 24 * 90) as usize;
    let mut bins = vec![0u64; n];
    for e in events {
        let i = (e.ts_ms.div_euclid(hour) - start) as usize;
        if let Some(b) = bins.get_mut(i) {
            *b += 1;
        }
    }
    let max = bins.iter().copied().max().unwrap_or(1).max(1);
    let (w, h) = (900.0, 160.0);
    let bw = w / n as f64;
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {}\" width=\"100%\" role=\"img\" aria-label=\"matched requests and findings per hour\">", h + 30.0);
    for (i, b) in bins.iter().enumerate() {
        let bh = *b as f64 / max as f64 * h;
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#c0392b\"><title>{}: {b}</title></rect>",
            i as f64 * bw,
            h - bh,
            (bw - 1.0).max(0.5),
            fmt_ms((start + i as i64) * hour)
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text><text x=\"{w}\" y=\"{}\" font-size=\"12\" text-anchor=\"end\">{} (max {max} per hour)</text></svg>",
        h + 20.0,
        fmt_ms(start * hour),
        h + 20.0,
        fmt_ms((start + n as i64) * hour)
    );
    svg
}

/// The report as one self-contained HTML page (no scripts, no external resources).
pub fn html(s: &Summary) -> String {
    let mut o = String::from("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Log review after an attack</title><style>body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:.2em .4em;text-align:left;vertical-align:top}.c{background:#fdf2e9;padding:1em;border-left:4px solid #c0392b}</style></head><body><h1>Log review after an attack</h1>");
    let _ = write!(
        o,
        "<p class=\"c\"><strong>Conclusion.</strong> {}</p>",
        esc(&conclusion(s))
    );
    o.push_str("<h2>What was checked</h2><ul>");
    for l in checked(s) {
        let _ = write!(o, "<li>{}</li>", esc(&l));
    }
    o.push_str("</ul><h2>When</h2>");
    o.push_str(&chart(&s.timeline));
    o.push_str("<h2>Exfiltration and abuse detectors</h2>");
    if s.detections.is_empty() {
        o.push_str("<p>Nothing.</p>");
    } else {
        o.push_str("<table><tr><th>level</th><th>detector</th><th>client</th><th>first</th><th>last</th><th>records served</th><th>bytes served</th><th>summary</th></tr>");
        for d in &s.detections {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                d.level,
                d.detector,
                esc(&d.client),
                fmt_ms(d.first_ms),
                fmt_ms(d.last_ms),
                d.records_served,
                d.bytes_served,
                esc(&d.summary)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<h2>Indicators of compromise seen</h2>");
    if s.ioc_findings.is_empty() {
        o.push_str("<p>None.</p>");
    } else {
        o.push_str("<ul>");
        for f in &s.ioc_findings {
            let _ = write!(
                o,
                "<li>{:?} <code>{}</code> ({}): {} request(s), {} client(s)</li>",
                f.kind,
                esc(&f.value),
                esc(&f.source),
                f.count,
                f.clients
            );
        }
        o.push_str("</ul>");
    }
    o.push_str("<h2>Sigma rules</h2>");
    if s.findings.is_empty() && s.correlations.is_empty() {
        o.push_str("<p>No rule matched.</p>");
    } else {
        o.push_str("<table><tr><th>level</th><th>rule</th><th>author</th><th>hits</th><th>clients</th><th>first</th><th>last</th></tr>");
        for c in &s.correlations {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{} (correlation)</td><td>{}</td><td>{}</td><td></td><td></td><td></td></tr>",
                esc(&c.level),
                esc(&c.title),
                esc(&c.author),
                c.hits.len()
            );
        }
        for f in &s.findings {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.level),
                esc(&f.title),
                esc(&f.author),
                f.count,
                f.clients,
                fmt_ms(f.first_ms),
                fmt_ms(f.last_ms)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("<p>Sigma rules: SigmaHQ and contributors, Detection Rule License 1.1; each finding names its rule's author.</p></body></html>\n");
    o
}

/// The findings table and the statement of what was checked, for a terminal.
pub fn table(s: &Summary) -> String {
    let mut o = String::new();
    let lines: u64 = s.files.iter().map(|f| f.lines).sum();
    let period = match (s.first_ms, s.last_ms) {
        (Some(a), Some(b)) => format!("{} to {}", fmt_ms(a), fmt_ms(b)),
        _ => "no records".into(),
    };
    let _ = writeln!(
        o,
        "Checked {} file(s), {lines} lines, {} records ({period}) against {} Sigma rules for web servers and proxies{}, {} correlation rules and {} indicators of compromise from {} feed file(s).",
        s.files.len(),
        s.records,
        s.rules_loaded,
        match &s.rules_bundle {
            Some(b) => format!(" ({} bundled from SigmaHQ's snapshot of {})", s.rules_bundled, b.date),
            None => String::new(),
        },
        s.correlations_loaded,
        s.iocs_loaded,
        s.ioc_files.len()
    );
    if !s.iocs_skipped.is_empty() {
        let _ = writeln!(
            o,
            "{} indicator(s) could not be used (listed in the JSON output), e.g.:",
            s.iocs_skipped.len()
        );
        for k in s.iocs_skipped.iter().take(5) {
            let _ = writeln!(o, "  {}: {:?}: {}", k.source, k.value, k.reason);
        }
    }
    if s.malformed > 0 {
        let _ = writeln!(o, "{} malformed line(s), not checked:", s.malformed);
        for m in s.malformed_lines.iter().take(10) {
            let _ = writeln!(o, "  {}:{}: {}", m.file, m.line, m.reason);
        }
        if s.malformed > 10 {
            let _ = writeln!(o, "  ... (all of them in the JSON output, up to 1,000)");
        }
    }
    if !s.rules_failed.is_empty() {
        let _ = writeln!(o, "{} rule(s) could not be used:", s.rules_failed.len());
        for f in &s.rules_failed {
            let _ = writeln!(o, "  {f}");
        }
    }
    for f in &s.ioc_findings {
        let _ = writeln!(
            o,
            "IoC {:?} {} ({}) seen in {}: {} request(s) from {} client(s), {} to {}",
            f.kind,
            f.value,
            f.source,
            f.fields.join(","),
            f.count,
            f.clients,
            fmt_ms(f.first_ms),
            fmt_ms(f.last_ms)
        );
    }
    if s.findings.is_empty() && s.correlations.is_empty() {
        let _ = writeln!(o, "No Sigma rule matched.");
        return o;
    }
    for c in &s.correlations {
        let _ = writeln!(
            o,
            "\n{} correlation \"{}\" ({}, {}): {} group(s)",
            c.level,
            c.title,
            c.kind,
            c.author,
            c.hits.len()
        );
        for h in c.hits.iter().take(10) {
            let _ = writeln!(
                o,
                "  {} = {:?}: {} between {} and {}",
                c.group_by.join(","),
                h.group,
                h.count,
                fmt_ms(h.first_ms),
                fmt_ms(h.last_ms)
            );
        }
    }
    if s.findings.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "\n{:<9} {:>7} {:>7}  {:<20} {:<20}  rule (author)",
        "level", "hits", "clients", "first", "last"
    );
    for f in &s.findings {
        let _ = writeln!(
            o,
            "{:<9} {:>7} {:>7}  {:<20} {:<20}  {} ({})",
            f.level,
            f.count,
            f.clients,
            fmt_ms(f.first_ms),
            fmt_ms(f.last_ms),
            f.title,
            f.author
        );
        if let Some(x) = f.samples.first() {
            let _ = writeln!(
                o,
                "{:>68}{}:{}: {}",
                "",
                x.file,
                x.line,
                x.text.chars().take(160).collect::<String>()
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_text_are_replaced_by_pseudonyms() {
        // The pseudonyms themselves are tested in levee-privacy.
        let p = Pseudonymizer::new(b"secret", false);
        let t = p.text("192.0.2.7 - - [x] \"GET /a HTTP/1.1\" 200 5 \"http://h/\" \"ua 1.2\"");
        assert!(!t.contains("192.0.2.7") && t.starts_with("anon-"), "{t}");
        assert!(t.contains("HTTP/1.1") && t.contains("ua 1.2"), "{t}");
    }

    #[test]
    fn timeline_formats() {
        let e = vec![TimelineEvent {
            ts_ms: 1_431_857_103_000,
            source: "sigma".into(),
            level: "high".into(),
            what: "Rule, with comma".into(),
            client: "192.0.2.1".into(),
            place: "f:1".into(),
            text: "line \"q\"".into(),
        }];
        let j = timeline_jsonl(&e);
        let v: serde_json::Value = serde_json::from_str(j.trim()).unwrap();
        assert_eq!(v["datetime"], "2015-05-17T10:05:03.000+00:00");
        assert_eq!(v["timestamp_desc"], "Request");
        assert!(v["message"].as_str().unwrap().starts_with("[sigma]"));
        let c = timeline_csv(&e);
        assert!(
            c.lines().nth(1).unwrap().contains("\"Rule, with comma\""),
            "{c}"
        );
        assert!(chart(&e).starts_with("<svg"));
    }
}
