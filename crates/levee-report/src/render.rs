//! The report as Markdown and as one self-contained, printable HTML page
//! (inline CSS and SVG charts: no script, no network).

use crate::{fmt_ms, Field, Report};
use std::fmt::Write;

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1_048_576.0)
}

fn solve_time(f: &levee_incident::Funnel) -> String {
    match f.median_solve_s {
        Some(u64::MAX) => "median solve time over 5 min".into(),
        Some(s) => format!("median solve time at most {s} s"),
        None => "no solve time recorded".into(),
    }
}

/// Text from the record (attacker-chosen User-Agents, paths) made inert in
/// Markdown: no table break, no raw HTML, no code span closed early.
fn md_cell(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('`', "&#96;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn sections(r: &Report) -> Vec<(&'static str, Vec<(String, String)>)> {
    let p = &r.peaks;
    vec![(
        "Peak rates and duration",
        vec![
            ("Duration".into(), crate::fmt_dur(p.duration_s)),
            (
                "Peak request rate".into(),
                format!(
                    "{:.0} req/s at {}",
                    p.requests_per_s,
                    fmt_ms(p.requests_per_s_at_ms)
                ),
            ),
            (
                "Peak blocked rate".into(),
                format!("{:.0} req/s", p.blocked_per_s),
            ),
            (
                "Worst origin p99".into(),
                format!(
                    "{:.1} ms at {}",
                    p.origin_p99_ms,
                    fmt_ms(p.origin_p99_at_ms)
                ),
            ),
            (
                "Peak open connections".into(),
                format!("{:.0}", p.connections),
            ),
            (
                "Packet-filter drops".into(),
                p.packet_filter_drops.to_string(),
            ),
            ("Requests in all".into(), p.requests.to_string()),
        ],
    )]
}

/// The report in Markdown.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Incident report: {} (site {})\n", r.id, r.site);
    let _ = writeln!(
        o,
        "Written {} by `levee report` from `{}`{}. Edge: {}. Addresses: {}. Marking: TLP:AMBER.\n",
        fmt_ms(r.generated_ms),
        r.incident_file,
        r.hunt_file
            .as_ref()
            .map_or(String::new(), |h| format!(" and `{h}`")),
        r.edge,
        r.addresses
    );
    let _ = writeln!(o, "## Summary\n\n{}\n", r.summary);
    let _ = writeln!(o, "## Timeline (UTC)\n\n| Time | What |\n|---|---|");
    for a in &r.timeline {
        let _ = writeln!(o, "| {} | {} |", fmt_ms(a.t_ms), md_cell(&a.what));
    }
    let _ = writeln!(o, "\n## Nature and vectors\n");
    let _ = writeln!(
        o,
        "Denial of service ({}). MITRE ATT&CK: {}.\n",
        r.taxonomy.join("; "),
        r.attack_patterns
            .iter()
            .map(|(id, n)| format!("{id} {n}"))
            .collect::<Vec<_>>()
            .join("; ")
    );
    if r.vectors.is_empty() {
        let _ = writeln!(o, "The edge derived no signature rule: the attack was met by rate limits, the challenge and connection limits.\n");
    } else {
        let _ = writeln!(
            o,
            "| Action | On | Signature | Evidence | Matches |\n|---|---|---|---|---|"
        );
        for v in &r.vectors {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} |",
                v.action,
                v.dim,
                md_cell(&v.value),
                md_cell(&v.evidence),
                v.matches
            );
        }
        o.push('\n');
    }
    for (title, rows) in sections(r) {
        let _ = writeln!(o, "## {title}\n\n| | |\n|---|---|");
        for (k, v) in rows {
            let _ = writeln!(o, "| {k} | {v} |");
        }
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "Requests by outcome:\n\n| Outcome | Requests |\n|---|---|"
    );
    for (k, v) in &r.peaks.outcomes {
        let _ = writeln!(o, "| {k} | {v} |");
    }
    let i = &r.impact;
    let _ = writeln!(
        o,
        "\n## Impact on the service\n\n{}\n\n- Functional impact: {}\n- Impact on the organisation (ICO scale): {}\n- Recoverability: {}\n",
        i.statement, i.functional, i.ico_impact, i.recoverability
    );
    let f = &r.funnel;
    let _ = writeln!(
        o,
        "Challenge: {} issued, {} solved ({:.0}%), {}.\n",
        f.challenged,
        f.solved,
        f.solve_rate * 100.0,
        solve_time(f)
    );
    let _ = writeln!(o, "## Measures taken\n");
    if r.measures.is_empty() {
        let _ = writeln!(o, "None recorded.");
    }
    for m in &r.measures {
        let _ = writeln!(o, "- {}: {}", fmt_ms(m.t_ms), md_cell(&m.what));
    }
    let _ = writeln!(o, "\n## Indicators\n\n{}\n", r.indicators.note);
    if r.indicators.attackers.is_empty() {
        let _ = writeln!(
            o,
            "No source prefix was blocked ({} heavy prefixes seen, none called attackers).\n",
            r.indicators.other_sources
        );
    } else {
        let _ = writeln!(o, "| Blocked prefix | Requests | Blocked |\n|---|---|---|");
        for a in &r.indicators.attackers {
            let _ = writeln!(
                o,
                "| {} | {} | {} |",
                md_cell(&a.prefix),
                a.requests,
                a.blocked
            );
        }
        o.push('\n');
    }
    let p = &r.personal_data;
    let _ = writeln!(
        o,
        "## Personal data (GDPR Art. 33)\n\n**{}.** {}\n",
        p.verdict, p.conclusion
    );
    for c in &p.checked {
        let _ = writeln!(o, "- Checked: {c}");
    }
    if !p.exfiltration.is_empty() {
        let _ = writeln!(o, "\n| Detector | Level | Client | Records | Served | Routes | Categories |\n|---|---|---|---|---|---|---|");
        for e in &p.exfiltration {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} |",
                e.detector,
                e.level,
                e.client,
                e.records,
                mib(e.bytes),
                md_cell(&e.routes.join(", ")),
                md_cell(&e.categories.join(", "))
            );
        }
    }
    for c in &p.compromise {
        let _ = writeln!(
            o,
            "- Indicator of compromise seen: {} {} ({}), {} time(s)",
            c.kind,
            md_cell(&c.value),
            c.source,
            c.count
        );
    }
    for f in &p.rule_findings {
        let _ =
            writeln!(
            o,
            "- Sigma rule matched, for review: {} ({}; author: {}), {} time(s) from {} client(s)",
            md_cell(&f.title), md_cell(&f.level), md_cell(&f.author), f.count, f.clients
        );
    }
    let _ = writeln!(
        o,
        "\n**72-hour clock.** Detected {}; notify the regulator by **{}** at the latest ({:.1} hours left when this report was written). Notification: {}.\n",
        fmt_ms(p.detected_ms),
        fmt_ms(p.deadline_ms),
        p.hours_left,
        p.notify
    );
    let _ = writeln!(o, "Likely consequences:\n");
    for c in &p.consequences {
        let _ = writeln!(o, "- {c}");
    }
    let _ = writeln!(o, "\nWhat to tell the ICO:\n");
    for c in &p.tell_the_regulator {
        let _ = writeln!(o, "- {c}");
    }
    form_md(&mut o, "ICO personal data breach form", &r.ico_form);
    form_md(&mut o, "NCSC: the nine questions", &r.ncsc);
    if let Some(l) = &r.ledger {
        let _ = writeln!(o, "## Records and retention\n");
        let _ = writeln!(
            o,
            "Retention ledger `{}`: {} entries, {}.\n",
            l.path,
            l.entries,
            match &l.verified {
                Ok(h) => format!("chain verified, last hash `{h}`"),
                Err(e) => format!("**does not verify**: {e}"),
            }
        );
        for c in &l.cited {
            let _ = writeln!(
                o,
                "- line {}: {} {} {} (hash `{}`)",
                c.line,
                fmt_ms(c.ts_ms),
                c.action,
                c.subject,
                c.hash
            );
        }
        o.push('\n');
    }
    if !r.problems.is_empty() {
        let _ = writeln!(o, "## Problems reading the record\n");
        for p in &r.problems {
            let _ = writeln!(o, "- {p}");
        }
    }
    o
}

fn form_md(o: &mut String, title: &str, fields: &[Field]) {
    let _ = writeln!(o, "\n## {title}\n\n| Question | Answer | |\n|---|---|---|");
    for f in fields {
        let _ = writeln!(
            o,
            "| {} | {} | {} |",
            md_cell(&f.question),
            md_cell(&f.answer),
            f.status
        );
    }
    o.push('\n');
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const COLOURS: [&str; 8] = [
    "#2f7d32", "#66bb6a", "#f9a825", "#1e88e5", "#ef6c00", "#c62828", "#8e24aa", "#6d4c41",
];

/// Requests per second stacked by outcome, as an SVG.
fn rate_chart(r: &Report) -> String {
    let (w, h, pad) = (860.0f64, 220.0f64, 40.0f64);
    let s = &r.series;
    let mut o = format!("<svg viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"requests per second by outcome\" class=\"chart\">", h + 30.0);
    if s.is_empty() {
        o.push_str("<text x=\"10\" y=\"20\">no per-second series in the record</text></svg>");
        return o;
    }
    let t0 = s[0].t as f64;
    let t1 = s
        .iter()
        .map(|x| (x.t + u64::from(x.span_s)) as f64)
        .fold(t0 + 1.0, f64::max);
    let max = s.iter().map(|x| x.rate()).fold(1.0, f64::max);
    let x = |t: f64| pad + (t - t0) / (t1 - t0) * (w - pad - 10.0);
    let y = |v: f64| h - v / max * (h - 20.0);
    let mut base = vec![0.0f64; s.len()];
    for (k, colour) in COLOURS.iter().enumerate() {
        let mut top = Vec::with_capacity(s.len());
        for (i, sec) in s.iter().enumerate() {
            top.push(base[i] + sec.counts[k] as f64 / f64::from(sec.span_s.max(1)));
        }
        let mut pts = String::new();
        for (i, sec) in s.iter().enumerate() {
            let _ = write!(
                pts,
                "{:.1},{:.1} {:.1},{:.1} ",
                x(sec.t as f64),
                y(top[i]),
                x((sec.t + u64::from(sec.span_s)) as f64),
                y(top[i])
            );
        }
        for (i, sec) in s.iter().enumerate().rev() {
            let _ = write!(
                pts,
                "{:.1},{:.1} {:.1},{:.1} ",
                x((sec.t + u64::from(sec.span_s)) as f64),
                y(base[i]),
                x(sec.t as f64),
                y(base[i])
            );
        }
        let _ = write!(
            o,
            "<polygon points=\"{pts}\" fill=\"{colour}\" stroke=\"none\"/>"
        );
        base = top;
    }
    let _ = write!(o, "<line x1=\"{pad}\" y1=\"{h}\" x2=\"{}\" y2=\"{h}\" stroke=\"#444\"/><line x1=\"{pad}\" y1=\"20\" x2=\"{pad}\" y2=\"{h}\" stroke=\"#444\"/>", w - 10.0);
    let _ = write!(o, "<text x=\"2\" y=\"24\" font-size=\"11\">{max:.0}</text><text x=\"2\" y=\"{h}\" font-size=\"11\">0</text>");
    let _ = write!(o, "<text x=\"{pad}\" y=\"{}\" font-size=\"11\">{}</text><text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\">{}</text>", h + 14.0, fmt_ms(s[0].t * 1000), w - 10.0, h + 14.0, fmt_ms(t1 as u64 * 1000));
    let mut lx = pad;
    for (k, name) in levee_incident::OUTCOMES.iter().enumerate() {
        let _ = write!(o, "<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\" font-size=\"11\">{name}</text>", h + 18.0, COLOURS[k], lx + 13.0, h + 27.0);
        lx += 95.0;
    }
    o.push_str("</svg>");
    o
}

/// Origin p99 (line) and 5xx per second (bars).
fn latency_chart(r: &Report) -> String {
    let (w, h, pad) = (860.0f64, 140.0f64, 40.0f64);
    let s = &r.series;
    let mut o = format!("<svg viewBox=\"0 0 {w} {}\" role=\"img\" aria-label=\"origin latency p99 and 5xx\" class=\"chart\">", h + 20.0);
    if s.is_empty() {
        o.push_str("</svg>");
        return o;
    }
    let t0 = s[0].t as f64;
    let t1 = s
        .iter()
        .map(|x| (x.t + u64::from(x.span_s)) as f64)
        .fold(t0 + 1.0, f64::max);
    let max = s.iter().map(|x| x.p99_ms).fold(1.0, f64::max);
    let emax = s.iter().map(|x| x.e5xx as f64).fold(1.0, f64::max);
    let x = |t: f64| pad + (t - t0) / (t1 - t0) * (w - pad - 10.0);
    for sec in s {
        if sec.e5xx > 0 {
            let bh = sec.e5xx as f64 / emax * (h - 20.0);
            let _ = write!(o, "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"#c62828\" opacity=\"0.5\"/>", x(sec.t as f64), h - bh, (x((sec.t + u64::from(sec.span_s)) as f64) - x(sec.t as f64)).max(1.0));
        }
    }
    let pts: Vec<String> = s
        .iter()
        .map(|sec| {
            format!(
                "{:.1},{:.1}",
                x(sec.t as f64 + 0.5),
                h - sec.p99_ms / max * (h - 20.0)
            )
        })
        .collect();
    let _ = write!(
        o,
        "<polyline points=\"{}\" fill=\"none\" stroke=\"#1e88e5\" stroke-width=\"1.5\"/>",
        pts.join(" ")
    );
    let _ = write!(o, "<line x1=\"{pad}\" y1=\"{h}\" x2=\"{}\" y2=\"{h}\" stroke=\"#444\"/><text x=\"2\" y=\"24\" font-size=\"11\">{max:.0} ms</text><text x=\"{pad}\" y=\"{}\" font-size=\"11\" fill=\"#1e88e5\">origin p99</text><text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#c62828\">5xx per second (max {emax:.0})</text></svg>", w - 10.0, h + 14.0, pad + 90.0, h + 14.0);
    o
}

fn form_html(o: &mut String, title: &str, fields: &[Field]) {
    let _ = write!(
        o,
        "<h2>{}</h2><table><tr><th>Question</th><th>Answer</th><th></th></tr>",
        esc(title)
    );
    for f in fields {
        let class = if f.status == "filled" {
            "filled"
        } else {
            "todo"
        };
        let _ = write!(
            o,
            "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.question),
            esc(&f.answer),
            f.status
        );
    }
    o.push_str("</table>");
}

/// The report as one self-contained, printable HTML page.
pub fn html(r: &Report) -> String {
    let mut o = String::from("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">");
    let _ = write!(
        o,
        "<title>Incident {} ({})</title>",
        esc(&r.id),
        esc(&r.site)
    );
    o.push_str("<style>body{font:14px/1.45 system-ui,sans-serif;max-width:900px;margin:2em auto;color:#222;padding:0 1em}h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:2px;margin-top:1.6em;break-after:avoid}table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top;font-size:13px}th{background:#f3f3f3}.todo td{background:#fff7e0}.tlp{display:inline-block;background:#000;color:#ffc000;padding:1px 6px;font-weight:bold}.verdict{font-weight:bold}.chart{width:100%;height:auto}code{font-size:12px;word-break:break-all}@media print{body{margin:0;max-width:none}h2{break-after:avoid}table,svg{break-inside:avoid}}</style></head><body>");
    let _ = write!(
        o,
        "<p><span class=\"tlp\">TLP:AMBER</span></p><h1>Incident report: {} (site {})</h1>",
        esc(&r.id),
        esc(&r.site)
    );
    let _ = write!(o, "<p>Written {} by <code>levee report</code> from <code>{}</code>{}. Edge: {}. Addresses: {}.</p>", fmt_ms(r.generated_ms), esc(&r.incident_file), r.hunt_file.as_ref().map_or(String::new(), |h| format!(" and <code>{}</code>", esc(h))), esc(&r.edge), esc(&r.addresses));
    let _ = write!(o, "<h2>Summary</h2><p>{}</p>", esc(&r.summary));
    let _ = write!(
        o,
        "<h2>Requests per second by outcome</h2>{}<h2>Origin latency and errors</h2>{}",
        rate_chart(r),
        latency_chart(r)
    );
    o.push_str("<h2>Timeline (UTC)</h2><table><tr><th>Time</th><th>What</th></tr>");
    for a in &r.timeline {
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td></tr>",
            fmt_ms(a.t_ms),
            esc(&a.what)
        );
    }
    o.push_str("</table>");
    let _ = write!(
        o,
        "<h2>Nature and vectors</h2><p>Denial of service ({}). MITRE ATT&amp;CK: {}.</p>",
        esc(&r.taxonomy.join("; ")),
        esc(&r
            .attack_patterns
            .iter()
            .map(|(i, n)| format!("{i} {n}"))
            .collect::<Vec<_>>()
            .join("; "))
    );
    if !r.vectors.is_empty() {
        o.push_str("<table><tr><th>Action</th><th>On</th><th>Signature</th><th>Evidence</th><th>Matches</th></tr>");
        for v in &r.vectors {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&v.action),
                esc(&v.dim),
                esc(&v.value),
                esc(&v.evidence),
                v.matches
            );
        }
        o.push_str("</table>");
    }
    for (title, rows) in sections(r) {
        let _ = write!(o, "<h2>{title}</h2><table>");
        for (k, v) in rows {
            let _ = write!(o, "<tr><th>{}</th><td>{}</td></tr>", esc(&k), esc(&v));
        }
        o.push_str("</table>");
    }
    o.push_str("<table><tr><th>Outcome</th><th>Requests</th></tr>");
    for (k, v) in &r.peaks.outcomes {
        let _ = write!(o, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    o.push_str("</table>");
    let i = &r.impact;
    let _ = write!(o, "<h2>Impact on the service</h2><p>{}</p><table><tr><th>Functional impact</th><td>{}</td></tr><tr><th>Impact on the organisation (ICO)</th><td>{}</td></tr><tr><th>Recoverability</th><td>{}</td></tr><tr><th>Challenge funnel</th><td>{} issued, {} solved ({:.0}%), {}</td></tr></table>", esc(&i.statement), esc(&i.functional), esc(&i.ico_impact), esc(&i.recoverability), r.funnel.challenged, r.funnel.solved, r.funnel.solve_rate * 100.0, solve_time(&r.funnel));
    o.push_str("<h2>Measures taken</h2><ul>");
    for m in &r.measures {
        let _ = write!(o, "<li>{}: {}</li>", fmt_ms(m.t_ms), esc(&m.what));
    }
    let _ = write!(
        o,
        "</ul><h2>Indicators</h2><p>{}</p>",
        esc(&r.indicators.note)
    );
    if !r.indicators.attackers.is_empty() {
        o.push_str("<table><tr><th>Blocked prefix</th><th>Requests</th><th>Blocked</th></tr>");
        for a in &r.indicators.attackers {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&a.prefix),
                a.requests,
                a.blocked
            );
        }
        o.push_str("</table>");
    }
    let p = &r.personal_data;
    let _ = write!(
        o,
        "<h2>Personal data (GDPR Art. 33)</h2><p><span class=\"verdict\">{}.</span> {}</p><ul>",
        esc(&p.verdict),
        esc(&p.conclusion)
    );
    for c in &p.checked {
        let _ = write!(o, "<li>Checked: {}</li>", esc(c));
    }
    o.push_str("</ul>");
    if !p.exfiltration.is_empty() {
        o.push_str("<table><tr><th>Detector</th><th>Level</th><th>Client</th><th>Records</th><th>Served</th><th>Routes</th><th>Categories</th></tr>");
        for e in &p.exfiltration {
            let _ = write!(o, "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", esc(&e.detector), esc(&e.level), esc(&e.client), e.records, mib(e.bytes), esc(&e.routes.join(", ")), esc(&e.categories.join(", ")));
        }
        o.push_str("</table>");
    }
    if !p.rule_findings.is_empty() {
        o.push_str("<table><tr><th>Sigma rule (for review)</th><th>Level</th><th>Author</th><th>Matches</th></tr>");
        for f in &p.rule_findings {
            let _ = write!(
                o,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&f.title),
                esc(&f.level),
                esc(&f.author),
                f.count
            );
        }
        o.push_str("</table>");
    }
    let _ = write!(o, "<p><b>72-hour clock.</b> Detected {}; notify the regulator by <b>{}</b> at the latest ({:.1} hours left when written). Notification: {}.</p><ul>", fmt_ms(p.detected_ms), fmt_ms(p.deadline_ms), p.hours_left, esc(&p.notify));
    for c in &p.consequences {
        let _ = write!(o, "<li>{}</li>", esc(c));
    }
    o.push_str("</ul>");
    form_html(&mut o, "ICO personal data breach form", &r.ico_form);
    form_html(&mut o, "NCSC: the nine questions", &r.ncsc);
    if let Some(l) = &r.ledger {
        let _ = write!(o, "<h2>Records and retention</h2><p>Retention ledger <code>{}</code>: {} entries, {}.</p><ul>", esc(&l.path), l.entries, esc(&match &l.verified { Ok(h) => format!("chain verified, last hash {h}"), Err(e) => format!("does not verify: {e}") }));
        for c in &l.cited {
            let _ = write!(
                o,
                "<li>line {}: {} {} {}</li>",
                c.line,
                fmt_ms(c.ts_ms),
                esc(&c.action),
                esc(&c.subject)
            );
        }
        o.push_str("</ul>");
    }
    if !r.problems.is_empty() {
        o.push_str("<h2>Problems reading the record</h2><ul>");
        for p in &r.problems {
            let _ = write!(o, "<li>{}</li>", esc(p));
        }
        o.push_str("</ul>");
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacker_text_is_inert_in_markdown_and_html() {
        let ua = "x<script>alert(1)</script>`|\n# heading";
        let m = md_cell(ua);
        assert!(!m.contains('<') && !m.contains('`') && !m.contains('\n'));
        assert!(m.contains("\\|"));
        assert!(!esc(ua).contains('<'));
    }
}
