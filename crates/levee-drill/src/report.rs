//! Drill output: the JSON result and a self-contained HTML report whose
//! charts are inline SVG (no scripts, no external resources).

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write as _;

/// One sample of the edge's own metrics (from its admin `/metrics`).
#[derive(Debug, Clone, Serialize)]
pub struct EdgeSample {
    pub second: u64,
    pub cpu_seconds: f64,
    pub rss_bytes: f64,
}

/// The full result of a drill.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub description: String,
    pub target: String,
    pub duration_s: f64,
    pub summary: Value,
    pub timeline: Vec<crate::stats::Second>,
    pub edge: Vec<EdgeSample>,
    /// Conditions given with --expect and whether they held.
    pub expectations: Vec<(String, bool)>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of several series over seconds, as an SVG element.
fn chart(title: &str, series: &[(&str, &str, Vec<f64>)], unit: &str) -> String {
    let (w, h, pad) = (720.0, 240.0, 40.0);
    let n = series.iter().map(|s| s.2.len()).max().unwrap_or(0).max(2);
    let max = series
        .iter()
        .flat_map(|s| s.2.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1.0);
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1) as f64;
    let y = |v: f64| h - pad - (h - 2.0 * pad) * v / max;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<figure><figcaption>{}</figcaption><svg role="img" aria-label="{}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="#999"/>"##,
        h - pad,
        w - pad,
        h - pad
    );
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{}" stroke="#999"/>"##,
        h - pad
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="11">{}</text>"##,
        2,
        pad - 6.0,
        esc(&format!("{max:.0} {unit}"))
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="11">seconds</text>"##,
        w - pad - 40.0,
        h - 8.0
    );
    for (k, (name, color, vals)) in series.iter().enumerate() {
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            pts.join(" ")
        );
        let lx = pad + 10.0 + 140.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/><text x="{}" y="15" font-size="11">{}</text>"#,
            lx + 14.0,
            esc(name)
        );
    }
    s.push_str("</svg></figure>");
    s
}

impl Report {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// A self-contained HTML page.
    pub fn to_html(&self) -> String {
        let col = |name: &str| -> Vec<f64> {
            self.timeline
                .iter()
                .map(|s| s.counts.get(name).copied().unwrap_or(0) as f64)
                .collect()
        };
        let legit_rate: Vec<f64> = self
            .timeline
            .iter()
            .map(|s| {
                let ok = s.counts.get("legit_ok").copied().unwrap_or(0) as f64;
                let bad = s.counts.get("legit_failed").copied().unwrap_or(0) as f64;
                if ok + bad == 0.0 {
                    100.0
                } else {
                    100.0 * ok / (ok + bad)
                }
            })
            .collect();
        let mut rows = String::new();
        if let Some(o) = self.summary.as_object() {
            for (k, v) in o {
                let _ = write!(
                    rows,
                    "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
                    esc(k),
                    esc(&v.to_string())
                );
            }
        }
        let mut exp = String::new();
        for (e, ok) in &self.expectations {
            let _ = write!(
                exp,
                "<li>{} {}</li>",
                if *ok { "✔ holds:" } else { "✘ fails:" },
                esc(e)
            );
        }
        let mut charts = chart(
            "Attack requests per second",
            &[
                ("sent", "#555", col("attack_sent")),
                ("reached origin (2xx/3xx)", "#d33", col("attack_passed")),
                ("blocked (4xx)", "#2a7", col("attack_blocked")),
                ("shed (503)", "#e90", col("attack_shed")),
                ("cut by the edge", "#36c", col("attack_cut")),
            ],
            "req/s",
        );
        charts.push_str(&chart(
            "Legitimate requests that succeeded (%)",
            &[("success", "#2a7", legit_rate)],
            "%",
        ));
        if !self.edge.is_empty() {
            let rss: Vec<f64> = self
                .edge
                .iter()
                .map(|e| e.rss_bytes / 1_048_576.0)
                .collect();
            let mut cpu = Vec::new();
            for w in self.edge.windows(2) {
                cpu.push(100.0 * (w[1].cpu_seconds - w[0].cpu_seconds).max(0.0));
            }
            charts.push_str(&chart(
                "Edge CPU (%) and resident memory (MiB)",
                &[("CPU %", "#d33", cpu), ("RSS MiB", "#36c", rss)],
                "",
            ));
        }
        format!(
            r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Levee drill: {name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em;color:#222}}table{{border-collapse:collapse}}th,td{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}figure{{margin:1.5em 0}}figcaption{{font-weight:bold}}</style>
</head><body>
<h1>Levee drill: {name}</h1>
<p>{desc}</p>
<p>Target <code>{target}</code>, {dur:.1} s.</p>
<h2>Expectations</h2><ul>{exp}</ul>
<h2>Summary</h2><table>{rows}</table>
<h2>Timeline</h2>{charts}
</body></html>
"#,
            name = esc(&self.scenario),
            desc = esc(&self.description),
            target = esc(&self.target),
            dur = self.duration_s,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_self_contained_and_escaped() {
        let t = crate::stats::Timeline::new(3);
        t.add(1, crate::stats::Field::AttackSent, 10);
        let r = Report {
            scenario: "x<y".into(),
            description: "d".into(),
            target: "http://127.0.0.1:1/".into(),
            duration_s: 3.0,
            summary: serde_json::json!({"legit_success": 1.0}),
            timeline: t.rows(3),
            edge: vec![],
            expectations: vec![("legit_success>=0.9".into(), true)],
        };
        let h = r.to_html();
        assert!(h.contains("x&lt;y"));
        assert!(h.contains("<svg"));
        assert!(!h.contains("<script") && !h.contains("src=\"http"));
        assert!(r.to_json().contains("\"attack_sent\": 10"));
    }
}
