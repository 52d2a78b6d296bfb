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
    /// The second (of the timeline) at which the attack started.
    pub attack_start_s: u64,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A line chart of several series over seconds, as an SVG element; a dashed
/// line marks the second the attack started.
fn chart(
    title: &str,
    series: &[(&str, &str, Vec<f64>)],
    unit: &str,
    attack_start: Option<usize>,
) -> String {
    let (w, h, pad) = (720.0, 260.0, 40.0);
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
        r#"<figure><figcaption>{t}</figcaption><svg role="img" aria-label="{t}" viewBox="0 0 {w} {h}" width="{w}" height="{h}" xmlns="http://www.w3.org/2000/svg">"#,
        t = esc(title)
    );
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#999"/>"##,
        b = h - pad,
        r = w - pad
    );
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#999"/>"##,
        b = h - pad
    );
    let _ = write!(
        s,
        r##"<text x="2" y="{}" font-size="11">{}</text>"##,
        pad - 6.0,
        esc(&format!("{max:.0} {unit}"))
    );
    let _ = write!(
        s,
        r##"<text x="{}" y="{}" font-size="11">seconds</text>"##,
        w - pad - 40.0,
        h - 4.0
    );
    let step = (n / 10).max(1);
    for i in (0..n).step_by(step) {
        let _ = write!(
            s,
            r##"<text x="{:.1}" y="{}" font-size="10" text-anchor="middle">{i}</text>"##,
            x(i),
            h - pad + 14.0
        );
    }
    if let Some(a) = attack_start.filter(|a| *a < n) {
        let _ = write!(
            s,
            r##"<line x1="{ax:.1}" y1="{pad}" x2="{ax:.1}" y2="{b}" stroke="#a00" stroke-dasharray="4 3"/><text x="{tx:.1}" y="{ty}" font-size="10" fill="#a00">attack starts</text>"##,
            ax = x(a),
            b = h - pad,
            tx = x(a) + 3.0,
            ty = pad + 10.0
        );
    }
    let mut lx = pad + 10.0;
    for (name, color, vals) in series {
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
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="6" width="10" height="10" fill="{color}"/><text x="{}" y="15" font-size="11">{}</text>"#,
            lx + 14.0,
            esc(name)
        );
        lx += 24.0 + 6.5 * name.chars().count() as f64;
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
        if exp.is_empty() {
            exp.push_str("<li>none given (use <code>--expect</code>)</li>");
        }
        let num = |k: &str| self.summary.get(k).and_then(Value::as_f64);
        let headline = format!(
            "Legitimate users: {} of requests succeeded, p99 latency {}. Attack: {} requests/s; {} stopped before the origin; {}.",
            num("legit_success").map_or("n/a".into(), |v| format!("{:.2}%", 100.0 * v)),
            num("legit_p99_ms").map_or("n/a".into(), |v| format!("{v:.1} ms")),
            num("attack_rate").map_or("n/a".into(), |v| format!("{v:.0}")),
            num("attack_passed_ratio").map_or("n/a".into(), |v| format!("{:.2}%", 100.0 * (1.0 - v))),
            num("time_to_mitigate_s").map_or("never mitigated to 90%".into(), |v| format!("mitigated within {v:.0} s"))
        );
        let start = Some(self.attack_start_s as usize);
        let mut charts = chart(
            "Attack requests per second",
            &[
                ("sent", "#555", col("attack_sent")),
                ("reached origin (2xx/3xx)", "#d33", col("attack_passed")),
                ("blocked (4xx)", "#2a7", col("attack_blocked")),
                ("challenged", "#a3c", col("attack_challenged")),
                ("shed (503)", "#e90", col("attack_shed")),
                ("cut by the edge", "#36c", col("attack_cut")),
            ],
            "req/s",
            start,
        );
        charts.push_str(&chart(
            "Legitimate requests that succeeded (%)",
            &[("success", "#2a7", legit_rate)],
            "%",
            start,
        ));
        if col("origin_requests").iter().any(|v| *v > 0.0) {
            charts.push_str(&chart(
                "As the origin saw it: requests per second and requests in flight",
                &[
                    ("requests/s", "#d33", col("origin_requests")),
                    ("in flight", "#36c", col("origin_in_flight")),
                ],
                "",
                start,
            ));
        }
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
                start,
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
<p><strong>{headline}</strong></p>
<h2>Expectations</h2><ul>{exp}</ul>
<h2>Summary</h2><table>{rows}</table>
<h2>Timeline</h2>{charts}
</body></html>
"#,
            name = esc(&self.scenario),
            desc = esc(&self.description),
            target = esc(&self.target),
            dur = self.duration_s,
            headline = esc(&headline),
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
            attack_start_s: 1,
        };
        let h = r.to_html();
        assert!(h.contains("x&lt;y"));
        assert!(h.contains("<svg"));
        assert!(!h.contains("<script") && !h.contains("src=\"http"));
        assert!(r.to_json().contains("\"attack_sent\": 10"));
    }
}
