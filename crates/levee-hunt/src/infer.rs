//! Exfiltration found without being told where the data is: the routes
//! that look like exports or personal-data routes are inferred from the log
//! itself, and clients are judged against the whole period and every other
//! client, in quiet hours too (a bulk download at 04:10 with nobody else
//! about is still a bulk download).
//!
//! Inferred routes (each finding says which and why):
//! - file-like downloads: `.csv`, `.xlsx`, `.xls`, `.zip`, `.sql`, `.json`,
//!   `.bak`, `.tar.gz`, `.tgz`, `.gz`, `.7z`, `.dump`, `.db`, `.sqlite`,
//!   `.mdb`, `.tar`;
//! - a path segment named export, download, backup, dump (and plurals);
//! - a path segment naming people: members, users, contacts, customers,
//!   accounts, donors, supporters, volunteers, voters, people, profiles,
//!   subscribers.
//!
//! Findings (`inferred` in their summary, with the evidence):
//! - `bulk_download` (high): one client took at least 50 MiB from
//!   export-like routes, or took at least 512 MiB in all and three times
//!   what any other client took;
//! - `personal_data_bulk` (high): one client had at least 500 successful
//!   answers from a people route, ten times the median of the other clients
//!   of that route.
//!
//! Routes the user named (`--export`, `--personal`, or the edge's tags)
//! are left to the detectors that use them. Memory: a total per client, and
//! per client at most 64 inferred routes.

use crate::detect::Finding;
use crate::logs::Record;
use crate::Sample;
use std::collections::HashMap;

const FILE_LIKE: [&str; 16] = [
    ".tar.gz", ".csv", ".xlsx", ".xls", ".zip", ".sql", ".json", ".bak", ".tgz", ".gz", ".7z",
    ".dump", ".db", ".sqlite", ".mdb", ".tar",
];
const EXPORT_WORDS: [&str; 8] = [
    "export",
    "exports",
    "download",
    "downloads",
    "backup",
    "backups",
    "dump",
    "dumps",
];
const PEOPLE_WORDS: [&str; 21] = [
    "members",
    "member",
    "users",
    "user",
    "contacts",
    "contact",
    "customers",
    "customer",
    "accounts",
    "account",
    "donors",
    "donor",
    "supporters",
    "volunteers",
    "voters",
    "people",
    "persons",
    "profiles",
    "profile",
    "subscribers",
    "subscriber",
];
/// What a path [`classify`] finds holds one of these (lower case): the
/// prefilter's hint that it is worth classifying.
pub fn needles() -> Vec<&'static str> {
    FILE_LIKE
        .iter()
        .chain(&EXPORT_WORDS)
        .chain(&PEOPLE_WORDS)
        .copied()
        .collect()
}

/// Never a data export, whatever its name.
const STATIC: [&str; 10] = [
    ".png", ".jpg", ".jpeg", ".gif", ".svg", ".css", ".js", ".ico", ".woff", ".woff2",
];

const EXPORT_BYTES: u64 = 50 << 20;
const HUGE_BYTES: u64 = 512 << 20;
const PEOPLE_RECORDS: u64 = 500;
const ROUTES_PER_CLIENT: usize = 64;

/// What kind of route a path is, by its look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A file-like download (the extension).
    File(&'static str),
    /// A segment named like an export (the word).
    ExportWord(&'static str),
    /// A segment naming people (the word).
    People(&'static str),
}

/// The route of a path (digit segments as `{id}`, a file name as `*.ext`)
/// and its kind, when it looks like one.
pub fn classify(path: &str) -> Option<(String, Kind)> {
    let p = path.to_ascii_lowercase();
    if STATIC.iter().any(|s| p.ends_with(s)) {
        return None;
    }
    let segs: Vec<&str> = p.split('/').collect();
    let last = segs.last().copied().unwrap_or("");
    let file = FILE_LIKE
        .iter()
        .find(|e| last.ends_with(*e) && last.len() > e.len());
    let word = |list: &[&'static str]| {
        segs.iter().find_map(|s| {
            s.split(['-', '_', '.'])
                .find_map(|w| list.iter().find(|x| **x == w).copied())
        })
    };
    let kind = match (file, word(&EXPORT_WORDS), word(&PEOPLE_WORDS)) {
        (Some(e), _, _) => Kind::File(e),
        (None, Some(w), _) => Kind::ExportWord(w),
        (None, None, Some(w)) => Kind::People(w),
        _ => return None,
    };
    let mut route = String::with_capacity(p.len());
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            route.push('/');
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            route.push_str("{id}");
        } else if i == segs.len() - 1 && file.is_some() {
            route.push('*');
            route.push_str(file.copied().unwrap_or(""));
        } else {
            route.push_str(s);
        }
    }
    Some((route, kind))
}

#[derive(Default)]
struct Use {
    kind: Option<Kind>,
    ok: u64,
    bytes: u64,
    first: i64,
    last: i64,
    samples: Vec<Sample>,
}

#[derive(Default)]
struct Client {
    bytes: u64,
    routes: crate::detect::Map<String, Use>,
}

/// Per client: total bytes, and uses of inferred routes.
#[derive(Default)]
pub struct Infer {
    clients: crate::detect::Map<String, Client>,
}

impl Infer {
    /// Count a record (2xx only). `worth`: whether its path may be an
    /// export or personal data (not under a route the user named, which is
    /// left to the other detectors, and holding one of [`needles`]).
    pub fn push(&mut self, r: &Record<'_>, worth: bool, sample: impl FnOnce() -> Sample) {
        if !(200..300).contains(&r.status) {
            return;
        }
        let c = self.clients.entry_ref(&*r.client).or_default();
        c.bytes += r.bytes_out;
        if !worth {
            return;
        }
        let Some((route, kind)) = classify(r.path()) else {
            return;
        };
        if !c.routes.contains_key(&route) && c.routes.len() >= ROUTES_PER_CLIENT {
            return;
        }
        let u = c.routes.entry(route).or_default();
        if u.ok == 0 {
            u.first = r.ts_ms;
            u.kind = Some(kind);
        }
        u.ok += 1;
        u.bytes += r.bytes_out;
        u.first = u.first.min(r.ts_ms);
        u.last = u.last.max(r.ts_ms);
        if u.samples.len() < 5 {
            u.samples.push(sample());
        }
    }

    /// The findings.
    pub fn report(self) -> Vec<Finding> {
        let mut out = Vec::new();
        // The largest and second largest totals.
        let mut top: Vec<(&String, u64)> = self.clients.iter().map(|(k, c)| (k, c.bytes)).collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let second = |who: &str| {
            top.iter()
                .find(|(k, _)| k.as_str() != who)
                .map_or(0, |x| x.1)
        };
        // Per people route: each client's successful answers.
        let mut people: HashMap<&str, Vec<u64>> = HashMap::new();
        for c in self.clients.values() {
            for (route, u) in &c.routes {
                if matches!(u.kind, Some(Kind::People(_))) {
                    people.entry(route.as_str()).or_default().push(u.ok);
                }
            }
        }
        for v in people.values_mut() {
            v.sort_unstable();
        }
        for (ip, c) in &self.clients {
            let export: Vec<(&String, &Use)> = c
                .routes
                .iter()
                .filter(|(_, u)| matches!(u.kind, Some(Kind::File(_) | Kind::ExportWord(_))))
                .collect();
            let export_bytes: u64 = export.iter().map(|(_, u)| u.bytes).sum();
            let others = second(ip);
            let huge = c.bytes >= HUGE_BYTES && c.bytes >= others.saturating_mul(3);
            if export_bytes >= EXPORT_BYTES || huge {
                let main = export.iter().max_by_key(|(_, u)| u.bytes);
                let why = match main.and_then(|(r, u)| u.kind.map(|k| (r, k))) {
                    Some((r, Kind::File(e))) => format!("file-like downloads ({e}) on {r}"),
                    Some((r, Kind::ExportWord(w))) => format!("a route named {w:?}: {r}"),
                    _ => "no export-like route".to_string(),
                };
                let (first, last, samples, requests) = match main {
                    Some((_, u)) => (u.first, u.last, u.samples.clone(), u.ok),
                    None => (0, 0, Vec::new(), 0),
                };
                out.push(Finding {
                    detector: "bulk_download",
                    level: "high",
                    client: ip.clone(),
                    summary: format!(
                        "inferred: {} MiB from export-like routes ({why}), {} MiB in all, against {} MiB for the next largest of {} clients{}",
                        export_bytes >> 20,
                        c.bytes >> 20,
                        others >> 20,
                        self.clients.len(),
                        if huge { "; far more than any other client" } else { "" }
                    ),
                    requests,
                    records_served: requests,
                    bytes_served: export_bytes.max(if huge { c.bytes } else { 0 }),
                    first_ms: first,
                    last_ms: last,
                    samples,
                });
            }
            for (route, u) in &c.routes {
                let Some(Kind::People(w)) = u.kind else {
                    continue;
                };
                if u.ok < PEOPLE_RECORDS {
                    continue;
                }
                // The median of the others (this client's own count removed
                // once), read off the route's sorted counts (no copy per client).
                let pop: &[u64] = people.get(route.as_str()).map_or(&[], Vec::as_slice);
                let median = match pop.binary_search(&u.ok) {
                    Ok(i) => {
                        let m = (pop.len() - 1) / 2;
                        pop.get(if m < i { m } else { m + 1 }).copied().unwrap_or(0)
                    }
                    Err(_) => pop.get(pop.len() / 2).copied().unwrap_or(0),
                };
                if u.ok < median.saturating_mul(10).max(1) {
                    continue;
                }
                out.push(Finding {
                    detector: "personal_data_bulk",
                    level: "high",
                    client: ip.clone(),
                    summary: format!(
                        "inferred: {} successful answers on {route} (a route naming people: {w:?}), against a median of {median} for its {} other clients",
                        u.ok,
                        pop.len()
                    ),
                    requests: u.ok,
                    records_served: u.ok,
                    bytes_served: u.bytes,
                    first_ms: u.first,
                    last_ms: u.last,
                    samples: u.samples.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified_by_their_look() {
        assert_eq!(
            classify("/backups/db-2026-09-01.sql.zip"),
            Some(("/backups/*.zip".into(), Kind::File(".zip")))
        );
        assert_eq!(
            classify("/data/Members-2026.tar.gz"),
            Some(("/data/*.tar.gz".into(), Kind::File(".tar.gz")))
        );
        assert_eq!(
            classify("/api/members/42"),
            Some(("/api/members/{id}".into(), Kind::People("members")))
        );
        assert_eq!(
            classify("/admin/export"),
            Some(("/admin/export".into(), Kind::ExportWord("export")))
        );
        assert_eq!(classify("/images/kibana-logstash-downloads.png"), None);
        assert_eq!(classify("/blog/2015/05/hello.html"), None);
        assert_eq!(classify("/.zip"), None, "a bare extension is no file name");
    }
}
