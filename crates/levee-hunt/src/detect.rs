//! Exfiltration and abuse detectors over log records, each finding with its
//! evidence (counts, first/last seen, sample lines) and an estimate of the
//! records and bytes served:
//!
//! - `egress_outlier`: bytes sent to one client in one window, as a robust
//!   z-score of log-bytes against the other clients of the same window
//!   (median and MAD), and against a pre-incident baseline when one is given;
//! - `id_enumeration`: many distinct numeric IDs on one route template
//!   (`/api/members/{id}`) from one client, with a regular stride and high
//!   coverage; *probing* when mostly 403/404, *data served* when mostly 2xx;
//! - `personal_data_bulk` / `export_without_login`: bulk 2xx on routes
//!   configured as personal data, and any 2xx on export routes from a client
//!   that never logged in;
//! - `probing`: many distinct 4xx paths, or requests for sensitive files;
//! - `off_hours`: admin and personal-data routes used outside business hours
//!   (context that raises other findings).
//!
//! Memory is bounded: at most `MAX_CLIENTS` clients are tracked (the rest are
//! counted as untracked), and per client and route at most `MAX_IDS` IDs.

use crate::logs::Record;
use crate::Sample;
use std::collections::HashMap;

/// Maps and sets of the log's values, hashed fast with a per-process
/// random seed (the keys are the attacker's); hashbrown's, whose
/// `entry_ref` finds or adds a client in one lookup, copying its address
/// only when it is new.
pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type Set<K> = hashbrown::HashSet<K, foldhash::fast::RandomState>;

pub const MAX_CLIENTS: usize = 1_000_000;
pub const MAX_IDS: usize = 100_000;

/// What the detectors are told about the site.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path prefixes holding personal data (e.g. `/api/members`).
    pub personal: Vec<String>,
    /// Path prefixes that export data in bulk.
    pub export: Vec<String>,
    /// Path prefixes of administration.
    pub admin: Vec<String>,
    /// The login path (a 2xx/3xx POST there means a client authenticated).
    pub login: Vec<String>,
    /// Business hours (UTC), `[start, end)`.
    pub business_hours: (u32, u32),
    /// Egress window.
    pub window_ms: i64,
    /// Records before this time form the pre-incident baseline.
    pub baseline_before_ms: Option<i64>,
    pub personal_bulk: u64,
    pub min_ids: usize,
    pub probe_paths: usize,
    /// The built-in tool and exploit-probe lists (`tools`).
    pub builtin: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            personal: Vec::new(),
            export: Vec::new(),
            admin: Vec::new(),
            login: Vec::new(),
            business_hours: (7, 20),
            window_ms: 3_600_000,
            baseline_before_ms: None,
            personal_bulk: 200,
            min_ids: 50,
            probe_paths: 30,
            builtin: true,
        }
    }
}

/// A detector's finding.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub detector: &'static str,
    pub level: &'static str,
    pub client: String,
    pub summary: String,
    pub requests: u64,
    /// Estimated records (2xx answers with data) and bytes served.
    pub records_served: u64,
    pub bytes_served: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub samples: Vec<Sample>,
}

/// Which of the detectors' own searches (bits: attack tools' User-Agents,
/// exploit probes, sensitive paths) may find something in a record, as
/// the rules' prefilter saw it (`hint_needles` gives it their needles).
#[derive(Debug, Clone, Copy)]
pub struct Hints(pub u32);

impl Hints {
    pub const ALL: Hints = Hints(u32::MAX);
    pub(crate) fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }
}

const HINT_TOOL: u32 = 1;
const HINT_PROBE: u32 = 2;
const HINT_SENSITIVE: u32 = 4;
pub(crate) const HINT_INFER: u32 = 8;

/// The needles of each hint group, in bit order.
pub fn hint_needles() -> [Vec<&'static str>; 4] {
    [
        crate::tools::TOOLS.iter().map(|t| t.needle).collect(),
        crate::tools::PROBES.iter().map(|p| p.needle).collect(),
        SENSITIVE.to_vec(),
        crate::infer::needles(),
    ]
}

const SENSITIVE: [&str; 14] = [
    "/.env",
    "/.git/",
    "/wp-config",
    "/.aws/",
    "/.ssh/",
    "/backup",
    ".sql",
    ".bak",
    "/phpinfo",
    "/server-status",
    "/.htpasswd",
    "/config.php",
    "/.ds_store",
    "/id_rsa",
];

/// A route template: numeric (and UUID-like) segments become `{id}`.
pub fn template(path: &str) -> (String, Option<u64>) {
    let mut id = None;
    let mut t = String::with_capacity(path.len());
    for (i, seg) in path.split('/').enumerate() {
        if i > 0 {
            t.push('/');
        }
        if !seg.is_empty() && seg.len() <= 18 && seg.bytes().all(|b| b.is_ascii_digit()) {
            id = seg.parse().ok();
            t.push_str("{id}");
        } else {
            t.push_str(seg);
        }
    }
    (t, id)
}

/// Whether the path has a digit-only segment (only those paths have a template worth keeping).
fn has_id(path: &str) -> bool {
    // As `split('/')` and a look at each segment, in one pass over the bytes.
    let (mut len, mut digits) = (0usize, true);
    for &b in path.as_bytes().iter().chain(b"/") {
        if b == b'/' {
            if len > 0 && len <= 18 && digits {
                return true;
            }
            (len, digits) = (0, true);
        } else {
            len += 1;
            digits &= b.is_ascii_digit();
        }
    }
    false
}

#[derive(Default)]
struct Span {
    first: i64,
    last: i64,
    n: u64,
    samples: Vec<Sample>,
}

impl Span {
    fn add(&mut self, ts: i64, sample: impl FnOnce() -> Sample) {
        if self.n == 0 || ts < self.first {
            self.first = ts;
        }
        self.last = self.last.max(ts);
        self.n += 1;
        if self.samples.len() < 3 {
            self.samples.push(sample());
        }
    }
}

#[derive(Default)]
struct Route {
    ids: Set<u64>,
    ok: u64,
    denied: u64,
    bytes_ok: u64,
    span: Span,
}

#[derive(Default)]
struct Client {
    bytes_by_window: Map<i64, u64>,
    routes: Map<String, Route>,
    personal_ok: u64,
    personal_bytes: u64,
    personal: Span,
    export: Span,
    export_bytes: u64,
    logged_in: bool,
    paths_4xx: Set<String>,
    probe: Span,
    sensitive: Span,
    off_hours: Span,
    /// The tools its `User-Agent` named, and the exploits it probed (built-in lists).
    tools: Span,
    tool_names: Vec<&'static crate::tools::Tool>,
    probes: Span,
    probe_names: Vec<&'static crate::tools::Probe>,
}

/// Feeds records, then reports.
pub struct Detectors {
    cfg: Config,
    clients: Map<String, Client>,
    pub untracked: u64,
    baseline: Vec<f64>,
    /// Routes inferred from the log (`infer`).
    infer: crate::infer::Infer,
}

fn starts(path: &str, prefixes: &[String]) -> bool {
    prefixes.iter().any(|p| path.starts_with(p.as_str()))
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Robust z-scores (0.6745 × (x − median) / MAD) of `x` against `pop`.
pub fn robust_z(x: f64, pop: &[f64]) -> f64 {
    Robust::of(pop).z(x)
}

/// A population's median and median absolute deviation, computed once
/// (scoring each of a window's clients against its own copy of the
/// population was quadratic: hours on a botnet's hundred thousand clients).
#[derive(Debug, Clone, Copy)]
pub struct Robust {
    med: f64,
    mad: f64,
}

impl Robust {
    pub fn of(pop: &[f64]) -> Robust {
        let mut p = pop.to_vec();
        let med = median(&mut p);
        let mut dev: Vec<f64> = p.iter().map(|v| (v - med).abs()).collect();
        Robust {
            med,
            mad: median(&mut dev).max(0.1),
        }
    }

    pub fn z(self, x: f64) -> f64 {
        0.6745 * (x - self.med) / self.mad
    }
}

impl Detectors {
    pub fn new(cfg: Config) -> Detectors {
        Detectors {
            cfg,
            clients: Map::default(),
            untracked: 0,
            baseline: Vec::new(),
            infer: crate::infer::Infer::default(),
        }
    }

    pub fn push(&mut self, r: &Record<'_>, file: &str, line: u64, text: &str) {
        self.push_hinted(r, file, line, text, Hints::ALL);
    }

    /// `push`, skipping the searches `hints` rules out.
    pub fn push_hinted(&mut self, r: &Record<'_>, file: &str, line: u64, text: &str, hints: Hints) {
        if self.clients.len() >= MAX_CLIENTS && !self.clients.contains_key(&*r.client) {
            self.untracked += 1;
            return;
        }
        let sample = || Sample {
            file: file.to_string(),
            line,
            text: crate::head(text, 300),
        };
        let cfg = &self.cfg;
        let named = starts(r.path(), &cfg.export) || starts(r.path(), &cfg.personal);
        // The inference reads the path only if the prefilter saw one of its words.
        self.infer.push(r, !named && hints.has(HINT_INFER), sample);
        let c = self.clients.entry_ref(&*r.client).or_default();
        let path = r.path();
        let ok = (200..300).contains(&r.status);
        let win = r.ts_ms.div_euclid(cfg.window_ms);
        *c.bytes_by_window.entry(win).or_insert(0) += r.bytes_out;
        if r.method == "POST" && starts(path, &cfg.login) && (200..400).contains(&r.status) {
            c.logged_in = true;
        }
        if !r.user.is_empty() {
            c.logged_in = true;
        }
        let (t, id) = if has_id(path) {
            template(path)
        } else {
            (String::new(), None)
        };
        if let Some(id) = id {
            let route = c.routes.entry(t).or_default();
            if route.ids.len() < MAX_IDS {
                route.ids.insert(id);
            }
            if ok {
                route.ok += 1;
                route.bytes_ok += r.bytes_out;
            } else if matches!(r.status, 401 | 403 | 404 | 410) {
                route.denied += 1;
            }
            route.span.add(r.ts_ms, sample);
        }
        if ok && starts(path, &cfg.personal) {
            c.personal_ok += 1;
            c.personal_bytes += r.bytes_out;
            c.personal.add(r.ts_ms, sample);
        }
        if ok && starts(path, &cfg.export) {
            c.export_bytes += r.bytes_out;
            c.export.add(r.ts_ms, sample);
        }
        if (400..500).contains(&r.status)
            && c.paths_4xx.len() < 10_000
            && c.paths_4xx.insert(path.to_string())
        {
            c.probe.add(r.ts_ms, sample);
        }
        static SENSITIVE_AC: std::sync::LazyLock<Option<aho_corasick::AhoCorasick>> =
            std::sync::LazyLock::new(|| crate::tools::any_case(SENSITIVE.iter().copied()));
        if hints.has(HINT_SENSITIVE) && crate::tools::first(&SENSITIVE_AC, path).is_some() {
            c.sensitive.add(r.ts_ms, sample);
        }
        let hour = (r.ts_ms.div_euclid(3_600_000).rem_euclid(24)) as u32;
        let (a, b) = cfg.business_hours;
        let outside = if a <= b {
            hour < a || hour >= b
        } else {
            hour < a && hour >= b
        };
        if outside && (starts(path, &cfg.admin) || starts(path, &cfg.personal)) {
            c.off_hours.add(r.ts_ms, sample);
        }
        if cfg.builtin {
            if let Some(t) = hints
                .has(HINT_TOOL)
                .then(|| crate::tools::tool_of(&r.user_agent))
                .flatten()
            {
                c.tools.add(r.ts_ms, sample);
                if !c.tool_names.iter().any(|x| x.name == t.name) {
                    c.tool_names.push(t);
                }
            }
            if let Some(p) = hints
                .has(HINT_PROBE)
                .then(|| crate::tools::probe_of(&r.target))
                .flatten()
            {
                c.probes.add(r.ts_ms, sample);
                if !c.probe_names.iter().any(|x| x.what == p.what) {
                    c.probe_names.push(p);
                }
            }
        }
    }

    /// The findings, most severe first.
    pub fn report(mut self) -> Vec<Finding> {
        let cfg = self.cfg.clone();
        let mut out = std::mem::take(&mut self.infer).report();
        // Egress: per window, the population of clients' log-bytes.
        let mut by_window: HashMap<i64, Vec<(String, f64, u64)>> = HashMap::new();
        for (ip, c) in &self.clients {
            for (w, b) in &c.bytes_by_window {
                by_window
                    .entry(*w)
                    .or_default()
                    .push((ip.clone(), ((*b as f64) + 1.0).ln(), *b));
            }
        }
        // The tail to beat: twice the largest client-window of the baseline
        // (when given), else twice the 99th percentile of the whole period, so
        // that a site where large downloads are normal is not all outliers.
        let mut all: Vec<u64> = by_window.values().flatten().map(|x| x.2).collect();
        let tail = match cfg.baseline_before_ms {
            Some(t) => {
                let bw = t.div_euclid(cfg.window_ms);
                let base: Vec<u64> = by_window
                    .iter()
                    .filter(|(w, _)| **w < bw)
                    .flat_map(|(_, v)| v.iter().map(|x| x.2))
                    .collect();
                self.baseline = base.iter().map(|b| (*b as f64 + 1.0).ln()).collect();
                base.iter().copied().max().unwrap_or(0)
            }
            None => {
                all.sort_unstable();
                all.get(all.len().saturating_sub(1) * 99 / 100)
                    .copied()
                    .unwrap_or(0)
            }
        };
        let floor = (tail.saturating_mul(2)).max(1 << 20);
        let baseline = (!self.baseline.is_empty()).then(|| Robust::of(&self.baseline));
        for (w, v) in &by_window {
            if v.len() < 10 {
                continue;
            }
            let pop: Vec<f64> = v.iter().map(|x| x.1).collect();
            let pop = Robust::of(&pop);
            for (ip, lb, bytes) in v {
                let z = pop.z(*lb);
                let zb = baseline.map(|b| b.z(*lb));
                if z >= 3.5 && *bytes >= floor && zb.is_none_or(|zb| zb >= 3.5) {
                    out.push(Finding {
                        detector: "egress_outlier",
                        level: "medium",
                        client: ip.clone(),
                        summary: format!(
                            "{} MiB sent to one client in one {}-minute window: robust z {z:.1} against {} clients of that window, over twice the {} ({} MiB){}",
                            bytes >> 20,
                            cfg.window_ms / 60_000,
                            v.len(),
                            if cfg.baseline_before_ms.is_some() { "baseline's largest" } else { "period's 99th percentile" },
                            tail >> 20,
                            zb.map_or(String::new(), |zb| format!(", {zb:.1} against the baseline"))
                        ),
                        requests: 0,
                        records_served: 0,
                        bytes_served: *bytes,
                        first_ms: w * cfg.window_ms,
                        last_ms: (w + 1) * cfg.window_ms,
                        samples: Vec::new(),
                    });
                }
            }
        }
        for (ip, c) in self.clients {
            for (t, r) in c.routes {
                if r.ids.len() < cfg.min_ids {
                    continue;
                }
                let mut ids: Vec<u64> = r.ids.iter().copied().collect();
                ids.sort_unstable();
                let span = ids[ids.len() - 1] - ids[0] + 1;
                let coverage = ids.len() as f64 / span as f64;
                let mut strides: HashMap<u64, usize> = HashMap::new();
                for w in ids.windows(2) {
                    *strides.entry(w[1] - w[0]).or_insert(0) += 1;
                }
                let (stride, n) = strides
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map_or((0, 0), |(s, n)| (*s, *n));
                let regular = n as f64 / (ids.len() - 1) as f64;
                if coverage < 0.5 || regular < 0.6 {
                    continue;
                }
                let served = r.ok * 2 >= r.span.n;
                out.push(Finding {
                    detector: "id_enumeration",
                    level: if served { "high" } else { "medium" },
                    client: ip.clone(),
                    summary: format!(
                        "{} distinct IDs on {t} ({}..{}, stride {stride}, {:.0}% coverage): {}",
                        ids.len(),
                        ids[0],
                        ids[ids.len() - 1],
                        coverage * 100.0,
                        if served {
                            format!("data served ({} answers 2xx)", r.ok)
                        } else {
                            format!("probing ({} answers 401/403/404/410)", r.denied)
                        }
                    ),
                    requests: r.span.n,
                    records_served: r.ok,
                    bytes_served: r.bytes_ok,
                    first_ms: r.span.first,
                    last_ms: r.span.last,
                    samples: r.span.samples,
                });
            }
            if c.personal_ok >= cfg.personal_bulk {
                out.push(Finding {
                    detector: "personal_data_bulk",
                    level: "high",
                    client: ip.clone(),
                    summary: format!(
                        "{} successful requests on personal-data routes",
                        c.personal_ok
                    ),
                    requests: c.personal.n,
                    records_served: c.personal_ok,
                    bytes_served: c.personal_bytes,
                    first_ms: c.personal.first,
                    last_ms: c.personal.last,
                    samples: c.personal.samples,
                });
            }
            if c.export.n > 0 && !c.logged_in {
                out.push(Finding {
                    detector: "export_without_login",
                    level: "critical",
                    client: ip.clone(),
                    summary: format!(
                        "{} successful export request(s) from a client that never logged in",
                        c.export.n
                    ),
                    requests: c.export.n,
                    records_served: c.export.n,
                    bytes_served: c.export_bytes,
                    first_ms: c.export.first,
                    last_ms: c.export.last,
                    samples: c.export.samples,
                });
            }
            if c.paths_4xx.len() >= cfg.probe_paths || c.sensitive.n > 0 {
                let (span, what) = if c.sensitive.n > 0 {
                    (
                        c.sensitive,
                        format!(
                            "requests for sensitive files, {} distinct 4xx paths",
                            c.paths_4xx.len()
                        ),
                    )
                } else {
                    (
                        c.probe,
                        format!("{} distinct paths answered 4xx", c.paths_4xx.len()),
                    )
                };
                out.push(Finding {
                    detector: "probing",
                    level: "low",
                    client: ip.clone(),
                    summary: what,
                    requests: span.n,
                    records_served: 0,
                    bytes_served: 0,
                    first_ms: span.first,
                    last_ms: span.last,
                    samples: span.samples,
                });
            }
            // The built-in lists: what was named, and where each entry comes from.
            let listed = |detector, level, what: String, span: Span| Finding {
                detector,
                level,
                client: ip.clone(),
                summary: format!("built-in list: {what}"),
                requests: span.n,
                records_served: 0,
                bytes_served: 0,
                first_ms: span.first,
                last_ms: span.last,
                samples: span.samples,
            };
            if c.tools.n > 0 {
                let names: Vec<&str> = c.tool_names.iter().map(|t| t.name).collect();
                let sources: Vec<&str> = c.tool_names.iter().map(|t| t.source).collect();
                let what = format!(
                    "the User-Agent names {} ({})",
                    names.join(", "),
                    sources.join("; ")
                );
                out.push(listed("known_tool", "low", what, c.tools));
            }
            if c.probes.n > 0 {
                let names: Vec<&str> = c.probe_names.iter().map(|p| p.what).collect();
                let sources: Vec<&str> = c.probe_names.iter().map(|p| p.source).collect();
                let what = format!("{} ({})", names.join(", "), sources.join("; "));
                out.push(listed("exploit_probe", "medium", what, c.probes));
            }
            if c.off_hours.n > 0 {
                out.push(Finding {
                    detector: "off_hours",
                    level: "informational",
                    client: ip.clone(),
                    summary: format!(
                        "{} request(s) to admin or personal-data routes outside business hours ({:02}:00-{:02}:00 UTC)",
                        c.off_hours.n, cfg.business_hours.0, cfg.business_hours.1
                    ),
                    requests: c.off_hours.n,
                    records_served: 0,
                    bytes_served: 0,
                    first_ms: c.off_hours.first,
                    last_ms: c.off_hours.last,
                    samples: c.off_hours.samples,
                });
            }
        }
        out.sort_by(|a, b| {
            crate::level_rank(b.level)
                .cmp(&crate::level_rank(a.level))
                .then(b.bytes_served.cmp(&a.bytes_served))
                .then(a.client.cmp(&b.client))
                .then(a.detector.cmp(b.detector))
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(
        ip: &str,
        ts: i64,
        method: &str,
        path: &str,
        status: u16,
        bytes: u64,
    ) -> Record<'static> {
        Record {
            ts_ms: ts,
            client: ip.to_string().into(),
            method: method.to_string().into(),
            target: path.to_string().into(),
            status,
            bytes_out: bytes,
            ..Record::default()
        }
    }

    fn cfg() -> Config {
        Config {
            personal: vec!["/api/members".into()],
            export: vec!["/export".into()],
            admin: vec!["/admin".into()],
            login: vec!["/login".into()],
            ..Config::default()
        }
    }

    #[test]
    fn enumeration_served_vs_probing() {
        let mut d = Detectors::new(cfg());
        for i in 0..120u64 {
            // Noon UTC: inside business hours.
            let t = 12 * 3_600_000 + i as i64 * 1000;
            d.push(
                &rec(
                    "203.0.113.5",
                    t,
                    "GET",
                    &format!("/api/members/{}", 1000 + i),
                    200,
                    512,
                ),
                "f",
                i + 1,
                "x",
            );
            d.push(
                &rec(
                    "198.51.100.9",
                    t,
                    "GET",
                    &format!("/api/members/{}", 5000 + 2 * i),
                    404,
                    0,
                ),
                "f",
                i + 1,
                "y",
            );
            // Random IDs: not an enumeration.
            d.push(
                &rec(
                    "192.0.2.7",
                    t,
                    "GET",
                    &format!("/api/members/{}", (i * 7919) % 100_000),
                    200,
                    10,
                ),
                "f",
                i + 1,
                "z",
            );
        }
        let f = d.report();
        let e: Vec<(&str, &str, &str)> = f
            .iter()
            .filter(|x| x.detector == "id_enumeration")
            .map(|x| (x.client.as_str(), x.level, x.summary.as_str()))
            .collect();
        assert_eq!(e.len(), 2, "{f:?}");
        assert_eq!(e[0].0, "203.0.113.5");
        assert!(
            e[0].2.contains("data served") && e[0].2.contains("stride 1"),
            "{}",
            e[0].2
        );
        assert_eq!(e[1].0, "198.51.100.9");
        assert!(
            e[1].2.contains("probing") && e[1].2.contains("stride 2"),
            "{}",
            e[1].2
        );
        let served = f.iter().find(|x| x.detector == "id_enumeration").unwrap();
        assert_eq!(
            (served.records_served, served.bytes_served),
            (120, 120 * 512)
        );
    }

    #[test]
    fn export_without_login_bulk_probing_off_hours_egress() {
        let mut d = Detectors::new(cfg());
        let noon = 12 * 3_600_000;
        d.push(
            &rec("10.0.0.1", noon, "POST", "/login", 302, 0),
            "f",
            1,
            "a",
        );
        d.push(
            &rec("10.0.0.1", noon + 1, "GET", "/export/all.csv", 200, 10),
            "f",
            2,
            "a",
        );
        d.push(
            &rec("10.0.0.2", noon + 2, "GET", "/export/all.csv", 200, 999),
            "f",
            3,
            "b",
        );
        d.push(
            &rec("10.0.0.3", 3 * 3_600_000, "GET", "/admin/users", 200, 1),
            "f",
            4,
            "c",
        );
        d.push(&rec("10.0.0.4", noon, "GET", "/.env", 404, 0), "f", 5, "d");
        // Egress: 20 ordinary clients and one that takes 50 MiB in the same hour.
        for i in 0..20 {
            d.push(
                &rec(
                    &format!("10.1.0.{i}"),
                    noon,
                    "GET",
                    "/",
                    200,
                    20_000 + i * 100,
                ),
                "f",
                6,
                "e",
            );
        }
        d.push(
            &rec("10.9.9.9", noon, "GET", "/big", 200, 50 << 20),
            "f",
            7,
            "g",
        );
        let f = d.report();
        let kinds: Vec<(&str, &str)> = f.iter().map(|x| (x.detector, x.client.as_str())).collect();
        assert!(
            kinds.contains(&("export_without_login", "10.0.0.2")),
            "{kinds:?}"
        );
        assert!(
            !kinds.contains(&("export_without_login", "10.0.0.1")),
            "logged in"
        );
        assert!(kinds.contains(&("off_hours", "10.0.0.3")));
        assert!(kinds.contains(&("probing", "10.0.0.4")));
        assert!(kinds.contains(&("egress_outlier", "10.9.9.9")), "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| k.0 == "egress_outlier").count(), 1);
        assert_eq!(f[0].detector, "export_without_login", "critical first");
    }

    #[test]
    fn sensitive_paths_are_lower_case() {
        assert!(SENSITIVE.iter().all(|s| *s == s.to_ascii_lowercase()));
    }

    #[test]
    fn ids_in_paths() {
        for (p, id) in [
            ("/api/members/42", true),
            ("/42", true),
            ("/a/b", false),
            ("/a/4b", false),
            ("", false),
            ("/", false),
            ("//7//", true),
            ("/1234567890123456789", false),
            ("/123456789012345678", true),
            ("/é/3", true),
        ] {
            assert_eq!(has_id(p), id, "{p}");
            assert_eq!(has_id(p), template(p).1.is_some(), "{p}");
        }
    }

    #[test]
    fn templates() {
        assert_eq!(
            template("/api/members/42"),
            ("/api/members/{id}".into(), Some(42))
        );
        assert_eq!(template("/a/b"), ("/a/b".into(), None));
    }
}
