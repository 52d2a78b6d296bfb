//! Incident records, as data.
//!
//! An incident opens when a site leaves `normal` and closes once it has
//! been calm for the cooldown. While it is open, the edge appends
//! [`Line`]s to a file of its own (JSON, one object per line): an `open`
//! line with what the minute before looked like, the ten seconds before
//! the opening (the rise), then one `second` line per second (per minute after the first hours, so a week-long attack is still
//! a small file), every event of the site (mode changes, rules with their
//! evidence, automatic and operator blocks, pins, sheds), snapshots of the
//! top source prefixes, and a `close` line.
//!
//! [`read`] turns a file's text back into a [`Summary`]: peaks with their
//! times, the vectors with their evidence, the actions, the top sources
//! (attackers only when blocked, never when merely rate-limited), the
//! challenge funnel and what legitimate users felt against before the
//! attack. A line that does not parse is named (`file:line: why`) and
//! skipped; the rest is kept. Pure: no I/O, no clock.

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

/// The outcomes a second counts, in order.
pub const OUTCOMES: [&str; 8] = [
    "origin",
    "cache",
    "challenged",
    "solved",
    "rate_limited",
    "blocked",
    "shed",
    "cut",
];

/// One line of an incident file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Line {
    Open {
        id: String,
        site: String,
        /// The edge that wrote it.
        edge: String,
        opened_unix_ms: u64,
        /// The mode the site left `normal` for, and why.
        mode: String,
        why: String,
        before: Before,
    },
    Second(Second),
    /// An event of the edge, as `/events` gives it.
    Event {
        event: serde_json::Value,
    },
    /// The heaviest source prefixes since the incident opened.
    Sources {
        ts_ms: u64,
        top: Vec<Source>,
    },
    Close {
        closed_unix_ms: u64,
    },
}

/// The traffic of one second (or of `span_s` seconds once coarser).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Unix seconds at its start.
    pub t: u64,
    pub span_s: u32,
    /// Requests by outcome, in the order of [`OUTCOMES`].
    pub counts: [u64; 8],
    /// Origin answers 5xx (and the edge's 502/504).
    pub e5xx: u64,
    /// Origin latency, for the requests that reached one.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Open client connections at the end of the second.
    pub conns: u64,
    /// Packets the packet filter dropped in the second (0 without it).
    pub xdp_drops: u64,
    /// Challenges solved, by how long they took: counts per bucket of
    /// [`SOLVE_BUCKETS_S`] (and one more for longer); empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub solves: Vec<u64>,
}

/// Upper bounds, in seconds, of the solve-time buckets of [`Second::solves`].
pub const SOLVE_BUCKETS_S: [u64; 8] = [1, 2, 3, 5, 10, 30, 60, 300];

/// Add solve-time histograms.
fn add_solves(into: &mut Vec<u64>, from: &[u64]) {
    if into.len() < from.len() {
        into.resize(from.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(from) {
        *a += b;
    }
}

impl Second {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Requests per second over its span.
    pub fn rate(&self) -> f64 {
        self.total() as f64 / f64::from(self.span_s.max(1))
    }

    /// Add `o` (a later second) into this coarser row.
    pub fn absorb(&mut self, o: &Second) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.e5xx += o.e5xx;
        self.xdp_drops += o.xdp_drops;
        add_solves(&mut self.solves, &o.solves);
        self.p50_ms = self.p50_ms.max(o.p50_ms);
        self.p99_ms = self.p99_ms.max(o.p99_ms);
        self.conns = self.conns.max(o.conns);
        self.span_s += o.span_s;
    }

    /// Answers that reached a client as the site's own: from the origin or
    /// the cache, without a 5xx.
    pub fn served_ok(&self) -> u64 {
        (self.counts[0] + self.counts[1]).saturating_sub(self.e5xx)
    }
}

/// What the site looked like in the minute before the incident.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Before {
    pub seconds: u32,
    pub requests_per_s: f64,
    /// Served without a 5xx, of those that reached the origin or cache.
    pub success: f64,
    pub p99_ms: f64,
}

impl Before {
    /// From the seconds before the incident.
    pub fn of(seconds: &[Second]) -> Before {
        let n: u64 = seconds.iter().map(|s| u64::from(s.span_s.max(1))).sum();
        let total: u64 = seconds.iter().map(Second::total).sum();
        let reached: u64 = seconds.iter().map(|s| s.counts[0] + s.counts[1]).sum();
        let ok: u64 = seconds.iter().map(Second::served_ok).sum();
        Before {
            seconds: n as u32,
            requests_per_s: if n > 0 { total as f64 / n as f64 } else { 0.0 },
            success: if reached > 0 {
                ok as f64 / reached as f64
            } else {
                1.0
            },
            p99_ms: seconds.iter().map(|s| s.p99_ms).fold(0.0, f64::max),
        }
    }
}

/// A source prefix with what it sent and how much of it was blocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub prefix: String,
    pub requests: u64,
    /// Requests refused by a block (list, rule); rate limits do not count.
    pub blocked: u64,
}

/// A peak and when it happened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    pub value: f64,
    pub t: u64,
}

impl Peak {
    fn see(&mut self, value: f64, t: u64) {
        if value > self.value {
            *self = Peak { value, t };
        }
    }
}

/// What legitimate users felt, against the minute before.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Felt {
    pub before: Before,
    /// Served without a 5xx, of those that reached the origin or cache.
    pub success: f64,
    /// The worst per-second origin p99 of the incident.
    pub p99_ms: f64,
}

/// The challenge funnel.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Funnel {
    pub challenged: u64,
    pub solved: u64,
    pub solve_rate: f64,
    /// The median time from issue to solution, in seconds (bucket bound).
    #[serde(default)]
    pub median_solve_s: Option<u64>,
}

/// An incident, read back from its lines.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    pub id: String,
    pub site: String,
    pub edge: String,
    pub opened_unix_ms: u64,
    pub closed_unix_ms: Option<u64>,
    pub duration_s: u64,
    pub mode: String,
    pub why: String,
    pub requests: u64,
    /// By outcome, over the whole incident.
    pub outcomes: std::collections::BTreeMap<String, u64>,
    pub peak_rps: Peak,
    pub peak_blocked_rps: Peak,
    pub peak_p99_ms: Peak,
    pub peak_conns: Peak,
    pub modes: Vec<serde_json::Value>,
    /// Rules derived or learnt, with their evidence.
    pub vectors: Vec<serde_json::Value>,
    /// Blocks, unblocks, pins, sheds and other actions, in order.
    pub actions: Vec<serde_json::Value>,
    /// The heaviest prefixes that were blocked (attackers)…
    pub attackers: Vec<Source>,
    /// …and every heavy prefix, blocked or not (not called attackers).
    pub top_sources: Vec<Source>,
    pub felt: Felt,
    pub funnel: Funnel,
    pub series: Vec<Second>,
    /// Lines that could not be read, as `file:line: why`.
    pub problems: Vec<String>,
}

/// Read an incident as the edge writes it (JSON lines) or as `GET
/// /incidents/{id}` returns it (one [`Summary`] object).
pub fn read_any(file: &str, text: &str) -> Summary {
    let whole = serde_json::from_str::<serde_json::Value>(text).ok();
    let is_summary = whole
        .as_ref()
        .and_then(|v| v.as_object())
        .is_some_and(|o| !o.contains_key("type") && o.contains_key("series"));
    if is_summary {
        match serde_json::from_str::<Summary>(text) {
            Ok(s) => return s,
            Err(e) => {
                return Summary {
                    problems: vec![format!("{file}: not an incident summary: {e}")],
                    ..Summary::default()
                }
            }
        }
    }
    read(file, text)
}

/// Read an incident file's text (`file` names it in problems).
pub fn read(file: &str, text: &str) -> Summary {
    let mut s = Summary::default();
    let mut before = Before::default();
    let mut last_sources: Vec<Source> = Vec::new();
    let mut n = 0usize;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(raw) {
            Ok(l) => l,
            Err(e) => {
                s.problems.push(format!("{file}:{}: {e}", i + 1));
                continue;
            }
        };
        n += 1;
        match line {
            Line::Open {
                id,
                site,
                edge,
                opened_unix_ms,
                mode,
                why,
                before: b,
            } => {
                if s.id.is_empty() {
                    (s.id, s.site, s.edge, s.opened_unix_ms, s.mode, s.why) =
                        (id, site, edge, opened_unix_ms, mode, why);
                    before = b;
                }
            }
            Line::Second(sec) => s.series.push(sec),
            Line::Event { event } => {
                let kind = event.get("event").and_then(|k| k.as_str()).unwrap_or("");
                match kind {
                    "mode" => s.modes.push(event),
                    "rule_added" => s.vectors.push(event),
                    _ => s.actions.push(event),
                }
            }
            Line::Sources { top, .. } => last_sources = top,
            Line::Close { closed_unix_ms } => s.closed_unix_ms = Some(closed_unix_ms),
        }
    }
    if n == 0 && s.problems.is_empty() {
        s.problems.push(format!("{file}: empty"));
    }
    finish(&mut s, before, last_sources);
    s
}

/// Peaks, totals, duration, what users felt, the funnel and the sources,
/// from the series and the rest.
fn finish(s: &mut Summary, before: Before, mut last_sources: Vec<Source>) {
    let mut reached = 0u64;
    let mut ok = 0u64;
    let mut outcomes = [0u64; 8];
    let mut solves: Vec<u64> = Vec::new();
    for sec in &s.series {
        add_solves(&mut solves, &sec.solves);
        for (a, b) in outcomes.iter_mut().zip(sec.counts) {
            *a += b;
        }
        s.peak_rps.see(sec.rate(), sec.t);
        s.peak_blocked_rps
            .see(sec.counts[5] as f64 / f64::from(sec.span_s.max(1)), sec.t);
        s.peak_p99_ms.see(sec.p99_ms, sec.t);
        s.peak_conns.see(sec.conns as f64, sec.t);
        reached += sec.counts[0] + sec.counts[1];
        ok += sec.served_ok();
    }
    s.requests = outcomes.iter().sum();
    s.outcomes = OUTCOMES
        .iter()
        .zip(outcomes)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let end = s.closed_unix_ms.unwrap_or_else(|| {
        s.series
            .last()
            .map_or(s.opened_unix_ms, |l| (l.t + u64::from(l.span_s)) * 1000)
    });
    s.duration_s = end.saturating_sub(s.opened_unix_ms) / 1000;
    s.felt = Felt {
        before,
        success: if reached > 0 {
            ok as f64 / reached as f64
        } else {
            1.0
        },
        p99_ms: s.peak_p99_ms.value,
    };
    s.funnel = Funnel {
        challenged: outcomes[2],
        solved: outcomes[3],
        solve_rate: if outcomes[2] > 0 {
            outcomes[3] as f64 / outcomes[2] as f64
        } else {
            0.0
        },
        median_solve_s: {
            let n: u64 = solves.iter().sum();
            let mut acc = 0;
            solves
                .iter()
                .position(|c| {
                    acc += c;
                    n > 0 && acc * 2 >= n
                })
                .map(|i| SOLVE_BUCKETS_S.get(i).copied().unwrap_or(u64::MAX))
        },
    };
    last_sources.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.prefix.cmp(&b.prefix)));
    s.attackers = last_sources
        .iter()
        .filter(|x| x.blocked > 0)
        .cloned()
        .collect();
    s.top_sources = last_sources;
}

/// One incident from the parts several fleet edges recorded (each its own
/// file, opened when its own traffic said so): seconds added up by time
/// (latency: the worse edge's), events in time order tagged with their
/// edge, sources added up by prefix, opened at the first opening and
/// closed at the last close (open while any part is). Parts of different
/// sites are merged too, with a problem naming them.
pub fn merge(mut parts: Vec<Summary>) -> Summary {
    if parts.len() <= 1 {
        return parts.pop().unwrap_or_default();
    }
    parts.sort_by_key(|p| p.opened_unix_ms);
    let mut s = Summary {
        id: parts[0].id.clone(),
        site: parts[0].site.clone(),
        edge: parts
            .iter()
            .map(|p| p.edge.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        opened_unix_ms: parts[0].opened_unix_ms,
        closed_unix_ms: parts
            .iter()
            .map(|p| p.closed_unix_ms)
            .collect::<Option<Vec<u64>>>()
            .and_then(|c| c.into_iter().max()),
        mode: parts[0].mode.clone(),
        why: parts[0].why.clone(),
        ..Summary::default()
    };
    let mut rows: std::collections::BTreeMap<(u64, u32), Second> = Default::default();
    let mut sources: std::collections::BTreeMap<String, Source> = Default::default();
    let mut before = Before {
        success: 1.0,
        ..Before::default()
    };
    for p in &parts {
        if p.site != s.site {
            s.problems.push(format!(
                "parts of different sites merged: {:?} ({}) and {:?} ({})",
                s.site, parts[0].id, p.site, p.id
            ));
        }
        s.problems.extend(p.problems.iter().cloned());
        for sec in &p.series {
            let r = rows.entry((sec.t, sec.span_s)).or_insert_with(|| Second {
                t: sec.t,
                span_s: sec.span_s,
                ..Second::default()
            });
            for (a, b) in r.counts.iter_mut().zip(sec.counts) {
                *a += b;
            }
            r.e5xx += sec.e5xx;
            r.xdp_drops += sec.xdp_drops;
            r.conns += sec.conns;
            add_solves(&mut r.solves, &sec.solves);
            r.p50_ms = r.p50_ms.max(sec.p50_ms);
            r.p99_ms = r.p99_ms.max(sec.p99_ms);
        }
        let tag = |e: &serde_json::Value| {
            let mut e = e.clone();
            if let Some(o) = e.as_object_mut() {
                o.insert("edge".into(), p.edge.clone().into());
            }
            e
        };
        s.modes.extend(p.modes.iter().map(tag));
        s.vectors.extend(p.vectors.iter().map(tag));
        s.actions.extend(p.actions.iter().map(tag));
        for x in &p.top_sources {
            let e = sources.entry(x.prefix.clone()).or_insert_with(|| Source {
                prefix: x.prefix.clone(),
                requests: 0,
                blocked: 0,
            });
            e.requests += x.requests;
            e.blocked += x.blocked;
        }
        let b = &p.felt.before;
        before.seconds = before.seconds.max(b.seconds);
        before.requests_per_s += b.requests_per_s;
        before.success = before.success.min(b.success);
        before.p99_ms = before.p99_ms.max(b.p99_ms);
    }
    let ts = |e: &serde_json::Value| e["ts_ms"].as_u64().unwrap_or(0);
    s.modes.sort_by_key(ts);
    s.vectors.sort_by_key(ts);
    s.actions.sort_by_key(ts);
    s.series = rows.into_values().collect();
    finish(&mut s, before, sources.into_values().collect());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(t: u64, origin: u64, blocked: u64) -> Line {
        let mut counts = [0; 8];
        counts[0] = origin;
        counts[5] = blocked;
        Line::Second(Second {
            t,
            span_s: 1,
            counts,
            p99_ms: t as f64,
            ..Second::default()
        })
    }

    #[test]
    fn a_record_reads_back_with_peaks_and_a_bad_line_named() {
        let open = Line::Open {
            id: "www-1".into(),
            site: "www".into(),
            edge: "a".into(),
            opened_unix_ms: 100_000,
            mode: "under_attack".into(),
            why: "flood".into(),
            before: Before::of(&[Second {
                t: 99,
                span_s: 1,
                counts: [10, 0, 0, 0, 0, 0, 0, 0],
                ..Second::default()
            }]),
        };
        let mut lines: Vec<String> = [
            open,
            sec(100, 20, 300),
            sec(101, 25, 900),
            Line::Event {
                event: serde_json::json!({"event": "rule_added", "rule": {"value": "ua"}}),
            },
            Line::Event {
                event: serde_json::json!({"event": "block", "cidr": "192.0.2.7/32"}),
            },
            Line::Sources {
                ts_ms: 101_000,
                top: vec![
                    Source {
                        prefix: "192.0.2.0/24".into(),
                        requests: 1200,
                        blocked: 1200,
                    },
                    Source {
                        prefix: "198.51.100.0/24".into(),
                        requests: 40,
                        blocked: 0,
                    },
                ],
            },
            Line::Close {
                closed_unix_ms: 104_000,
            },
        ]
        .iter()
        .map(|l| serde_json::to_string(l).unwrap())
        .collect();
        lines.insert(3, "{\"type\":\"second\",\"t\":".into());
        let s = read("inc/www-1.jsonl", &lines.join("\n"));
        assert_eq!(
            s.problems,
            vec!["inc/www-1.jsonl:4: EOF while parsing a value at line 1 column 21"]
        );
        assert_eq!(s.id, "www-1");
        assert_eq!(s.requests, 1245);
        assert_eq!(
            s.peak_rps,
            Peak {
                value: 925.0,
                t: 101
            }
        );
        assert_eq!(s.peak_blocked_rps.value, 900.0);
        assert_eq!(s.duration_s, 4);
        assert_eq!(s.vectors.len(), 1);
        assert_eq!(s.actions.len(), 1);
        // Attackers are the blocked prefixes only.
        assert_eq!(s.attackers.len(), 1);
        assert_eq!(s.top_sources.len(), 2);
        assert_eq!(s.felt.before.requests_per_s, 10.0);
        assert_eq!(s.felt.success, 1.0);
    }

    #[test]
    fn the_admin_apis_summary_reads_back_as_it_was() {
        let text = [
            serde_json::to_string(&sec(100, 20, 300)).unwrap(),
            serde_json::to_string(&Line::Close {
                closed_unix_ms: 102_000,
            })
            .unwrap(),
        ]
        .join("\n");
        let s = read("f", &text);
        let again = read_any("g", &serde_json::to_string(&s).unwrap());
        assert_eq!(again.requests, 320);
        assert_eq!(again.series, s.series);
        assert_eq!(again.closed_unix_ms, Some(102_000));
        // A JSON-lines file of one line is still read as lines.
        assert_eq!(
            read_any("h", &text[..text.find('\n').unwrap()]).requests,
            320
        );
        assert!(
            read_any("i", "{\"series\": 3}").problems[0].starts_with("i: not an incident summary")
        );
    }

    #[test]
    fn two_edges_parts_merge_into_one_incident() {
        let part = |edge: &str, opened: u64, t: u64, n: u64, blocked: u64| {
            let lines: Vec<String> = [
                Line::Open {
                    id: format!("www-{opened}"),
                    site: "www".into(),
                    edge: edge.into(),
                    opened_unix_ms: opened * 1000,
                    mode: "under_attack".into(),
                    why: "flood".into(),
                    before: Before {
                        seconds: 60,
                        requests_per_s: 10.0,
                        success: 1.0,
                        p99_ms: 5.0,
                    },
                },
                sec(t, n, blocked),
                sec(t + 1, n, blocked),
                Line::Sources {
                    ts_ms: (t + 1) * 1000,
                    top: vec![Source {
                        prefix: "192.0.2.0/24".into(),
                        requests: 2 * (n + blocked),
                        blocked: 2 * blocked,
                    }],
                },
                Line::Close {
                    closed_unix_ms: (t + 5) * 1000,
                },
            ]
            .iter()
            .map(|l| serde_json::to_string(l).unwrap())
            .collect();
            read(edge, &lines.join("\n"))
        };
        let m = merge(vec![
            part("b", 101, 101, 30, 500),
            part("a", 100, 100, 20, 300),
        ]);
        assert_eq!(m.edge, "a+b");
        assert_eq!(m.opened_unix_ms, 100_000);
        assert_eq!(m.closed_unix_ms, Some(106_000));
        // Second 101 is both edges': 20 + 300 + 30 + 500.
        assert_eq!(
            m.peak_rps,
            Peak {
                value: 850.0,
                t: 101
            }
        );
        assert_eq!(m.requests, 2 * 320 + 2 * 530);
        assert_eq!(m.series.len(), 3);
        assert_eq!(m.attackers[0].blocked, 1600);
        assert_eq!(m.felt.before.requests_per_s, 20.0);
        assert_eq!(m.funnel.median_solve_s, None);
        let mut a = Second {
            t: 1,
            span_s: 1,
            solves: vec![0, 3, 0, 1],
            ..Second::default()
        };
        a.absorb(&Second {
            t: 2,
            span_s: 1,
            solves: vec![0, 0, 0, 0, 4],
            ..Second::default()
        });
        assert_eq!(a.solves, vec![0, 3, 0, 1, 4]);
        let r = read("s", &serde_json::to_string(&Line::Second(a)).unwrap());
        // 8 solved: the 4th and 5th are in the 3-5 s bucket.
        assert_eq!(r.funnel.median_solve_s, Some(5));
        assert!(m.problems.is_empty(), "{:?}", m.problems);
    }

    #[test]
    fn garbage_and_empty_files_are_named_not_fatal() {
        let s = read("f", "\u{0}\u{1}not json\n{\"type\":\"nope\"}\n");
        assert_eq!(s.problems.len(), 2);
        assert!(s.problems[0].starts_with("f:1: "));
        assert!(read("g", "").problems[0].contains("empty"));
    }

    #[test]
    fn coarser_rows_keep_totals_and_worst_values() {
        let mut m = Second {
            t: 0,
            span_s: 1,
            counts: [1; 8],
            p99_ms: 3.0,
            ..Second::default()
        };
        m.absorb(&Second {
            t: 1,
            span_s: 1,
            counts: [2; 8],
            p99_ms: 9.0,
            conns: 4,
            ..Second::default()
        });
        assert_eq!(m.span_s, 2);
        assert_eq!(m.total(), 24);
        assert_eq!(m.rate(), 12.0);
        assert_eq!(m.p99_ms, 9.0);
        assert_eq!(m.conns, 4);
    }
}
