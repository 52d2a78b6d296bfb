//! Incident records (`[incidents]`): an incident opens when a site leaves
//! `normal` and closes once it has been calm for `cooldown`; while it is
//! open, a file of its own under `dir` gets a line per second (per minute
//! after `fine_for`), every event of the site, and the top source prefixes
//! every 10 s (`levee_incident::Line`). The file survives a restart: an
//! edge that starts with an incident still open carries on appending to it.
//!
//! Per request, the pipeline's one record adds to the site's [`Tally`]
//! (outcome, origin latency, and while an incident is open the request's
//! /24 or /64 in a bounded table); once a second [`Shared::incidents_tick`]
//! takes the tally, decides, and writes. Reading (`GET /incidents`) goes
//! through `levee_incident::read`, which names any bad line and keeps the rest.

use crate::accesslog::Verdict;
use crate::answer::Why;
use crate::clock;
use crate::metrics::Reason;
use crate::Shared;
use levee_incident::{Before, Line, Second, Source};
use levee_limits::rate::TopK;
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Latency buckets: `[2^i, 2^(i+1))` microseconds.
const BUCKETS: usize = 32;
/// Prefixes kept per site while an incident is open (space-saving).
const TOP: usize = 256;
/// Seconds of history kept to describe "before".
const HISTORY: usize = 60;
/// The incidents `GET /incidents` lists, newest first, at most.
const LIST: usize = 100;
/// Top sources are written this often.
const SOURCES_EVERY_S: u64 = 10;

/// A site's counts since the last second (kept across reloads by site name).
#[derive(Debug)]
pub(crate) struct Tally {
    counts: [AtomicU64; 8],
    e5xx: AtomicU64,
    latency: [AtomicU64; BUCKETS],
    /// While an incident is open: requests and blocked requests per prefix.
    recording: AtomicBool,
    top: Mutex<(TopK, HashMap<u128, u64>)>,
}

impl Default for Tally {
    fn default() -> Self {
        Tally {
            counts: Default::default(),
            e5xx: AtomicU64::new(0),
            latency: std::array::from_fn(|_| AtomicU64::new(0)),
            recording: AtomicBool::new(false),
            top: Mutex::new((TopK::new(TOP), HashMap::new())),
        }
    }
}

/// The outcome a record counts as (index into `levee_incident::OUTCOMES`).
fn outcome(verdict: Verdict, why: Why) -> usize {
    match (verdict, why) {
        (_, Why::Note("cache_hit" | "cache_stale")) => 1,
        (_, Why::Note("challenge_solved")) => 3,
        (
            _,
            Why::Defense(
                Reason::RateLimitIp
                | Reason::RateLimitPrefix
                | Reason::RateLimitTotal
                | Reason::RuleRateLimit
                | Reason::InFlightCapIp
                | Reason::InFlightCapPrefix,
            ),
        ) => 4,
        (
            _,
            Why::Defense(
                Reason::BodyTooSlow
                | Reason::SendTooSlow
                | Reason::HeaderTimeout
                | Reason::IdleTimeout,
            ),
        ) => 7,
        (Verdict::Challenge, _) => 2,
        (Verdict::Block, _) => 5,
        (Verdict::Shed, _) => 6,
        (Verdict::Allow, _) => 0,
    }
}

fn key_of(ip: IpAddr) -> u128 {
    let (p, v6) = levee_limits::prefix_of(ip);
    p ^ (u128::from(v6) << 127)
}

fn prefix_text(key: u128) -> String {
    let v6 = key >> 127 == 1;
    let bits = key & !(1u128 << 127);
    if v6 {
        format!("{}/64", std::net::Ipv6Addr::from(bits))
    } else {
        format!("{}/24", std::net::Ipv4Addr::from(bits as u32))
    }
}

impl Tally {
    /// Count one finished request of the site.
    pub(crate) fn record(
        &self,
        verdict: Verdict,
        why: Why,
        status: u16,
        origin_us: Option<u64>,
        client: IpAddr,
    ) {
        let o = outcome(verdict, why);
        self.counts[o].fetch_add(1, Ordering::Relaxed);
        if status >= 500 && o == 0 {
            self.e5xx.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(us) = origin_us {
            let b = (63 - us.max(1).leading_zeros() as usize).min(BUCKETS - 1);
            self.latency[b].fetch_add(1, Ordering::Relaxed);
        }
        if self.recording.load(Ordering::Relaxed) {
            let k = key_of(client);
            let mut t = self.top.lock().unwrap_or_else(PoisonError::into_inner);
            t.0.add(k, 1);
            if o == 5 && t.1.len() < TOP * 4 {
                *t.1.entry(k).or_insert(0) += 1;
            } else if o == 5 {
                if let Some(n) = t.1.get_mut(&k) {
                    *n += 1;
                }
            }
        }
    }

    /// The counts since the last call, as the second starting at `t`.
    fn take(&self, t: u64, conns: u64) -> Second {
        let mut s = Second {
            t,
            span_s: 1,
            conns,
            ..Second::default()
        };
        for (c, a) in s.counts.iter_mut().zip(&self.counts) {
            *c = a.swap(0, Ordering::Relaxed);
        }
        s.e5xx = self.e5xx.swap(0, Ordering::Relaxed);
        let hist: Vec<u64> = self
            .latency
            .iter()
            .map(|a| a.swap(0, Ordering::Relaxed))
            .collect();
        s.p50_ms = quantile(&hist, 0.5);
        s.p99_ms = quantile(&hist, 0.99);
        s
    }

    fn sources(&self) -> Vec<Source> {
        let t = self.top.lock().unwrap_or_else(PoisonError::into_inner);
        t.0.top(20)
            .into_iter()
            .map(|(k, n, _)| Source {
                prefix: prefix_text(k),
                requests: n,
                blocked: t.1.get(&k).copied().unwrap_or(0),
            })
            .collect()
    }

    fn start_recording(&self, on: bool) {
        if on {
            let mut t = self.top.lock().unwrap_or_else(PoisonError::into_inner);
            *t = (TopK::new(TOP), HashMap::new());
        }
        self.recording.store(on, Ordering::Relaxed);
    }
}

/// A quantile of a log2 histogram, in ms (each bucket read at 1.5 × its floor).
fn quantile(hist: &[u64], q: f64) -> f64 {
    let n: u64 = hist.iter().sum();
    if n == 0 {
        return 0.0;
    }
    let want = ((n as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, c) in hist.iter().enumerate() {
        seen += c;
        if seen >= want {
            return (1u64 << i) as f64 * 1.5 / 1000.0;
        }
    }
    0.0
}

/// An open incident of a site.
#[derive(Debug)]
struct Open {
    id: String,
    path: PathBuf,
    file: std::fs::File,
    opened_s: u64,
    calm_since: Option<u64>,
    /// The minute row being filled once past `fine_for`.
    coarse: Option<Second>,
}

#[derive(Debug, Default)]
struct SiteRec {
    history: VecDeque<Second>,
    open: Option<Open>,
}

/// The edge's incident recorder.
#[derive(Debug, Default)]
pub(crate) struct Incidents {
    dir: Option<PathBuf>,
    edge: String,
    sites: Mutex<HashMap<String, SiteRec>>,
    last_second: AtomicU64,
    last_event: AtomicU64,
    write_errors: AtomicU64,
}

fn file_name(id: &str) -> String {
    format!("{id}.jsonl")
}

/// A safe id: letters, digits, `-`, `_`, `.` (never a path).
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn tag(site: &str) -> String {
    site.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect()
}

impl Incidents {
    /// The recorder for `cfg` (`Err` names what to fix when a configured
    /// directory cannot be used). Open incidents found in it are resumed.
    pub(crate) fn new(cfg: &levee_config::Incidents, edge: &str) -> Result<Incidents, String> {
        let mut me = Incidents {
            edge: edge.to_string(),
            ..Incidents::default()
        };
        if !cfg.enabled {
            return Ok(me);
        }
        let (dir, explicit) = match &cfg.dir {
            Some(d) => (PathBuf::from(d), true),
            None => (PathBuf::from("/var/lib/levee/incidents"), false),
        };
        if let Err(e) = std::fs::create_dir_all(&dir) {
            if explicit {
                return Err(format!(
                    "incidents.dir: cannot create {}: {e}",
                    dir.display()
                ));
            }
            eprintln!(
                "levee: warning: incidents are not recorded: cannot create {} ({e}); set [incidents] dir to a writable directory",
                dir.display()
            );
            return Ok(me);
        }
        me.dir = Some(dir);
        me.resume();
        Ok(me)
    }

    /// Carry on with incidents a previous run left open (the newest per site).
    fn resume(&mut self) {
        let Some(dir) = &self.dir else { return };
        let mut open: Vec<(u64, String, String, PathBuf)> = Vec::new();
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let s = levee_incident::read(&p.display().to_string(), &text);
            if s.closed_unix_ms.is_none() && !s.id.is_empty() {
                open.push((s.opened_unix_ms, s.site, s.id, p));
            }
        }
        open.sort();
        let sites = self.sites.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (opened, site, id, path) in open {
            let Ok(file) = std::fs::OpenOptions::new().append(true).open(&path) else {
                continue;
            };
            let rec = sites.entry(site).or_default();
            rec.open = Some(Open {
                id,
                path,
                file,
                opened_s: opened / 1000,
                calm_since: None,
                coarse: None,
            });
        }
    }

    /// Ids of the incidents open now, by site.
    fn open_ids(&self) -> Vec<(String, String)> {
        self.sites
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|(s, r)| r.open.as_ref().map(|o| (s.clone(), o.id.clone())))
            .collect()
    }

    /// `GET /incidents`: every record, newest first (summaries without series).
    pub(crate) fn list(&self) -> serde_json::Value {
        let Some(dir) = &self.dir else {
            return serde_json::json!({"recording": false, "incidents": []});
        };
        let mut all: Vec<levee_incident::Summary> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
            .filter_map(|e| {
                let p = e.path();
                let text = std::fs::read_to_string(&p).ok()?;
                Some(levee_incident::read(&p.display().to_string(), &text))
            })
            .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.opened_unix_ms));
        all.truncate(LIST);
        let items: Vec<serde_json::Value> = all
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "site": s.site, "edge": s.edge,
                    "opened_unix_ms": s.opened_unix_ms, "closed_unix_ms": s.closed_unix_ms,
                    "duration_s": s.duration_s, "mode": s.mode, "requests": s.requests,
                    "peak_rps": s.peak_rps, "problems": s.problems.len(),
                })
            })
            .collect();
        serde_json::json!({
            "recording": true,
            "dir": dir.display().to_string(),
            "open": self.open_ids().into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
            "incidents": items,
        })
    }

    /// `GET /incidents/{id}`: the whole record, or `None`.
    pub(crate) fn get(&self, id: &str) -> Option<levee_incident::Summary> {
        let dir = self.dir.as_ref()?;
        if !valid_id(id) {
            return None;
        }
        let p = dir.join(file_name(id));
        let text = std::fs::read_to_string(&p).ok()?;
        Some(levee_incident::read(&p.display().to_string(), &text))
    }

    /// `levee_incidents_open` and `levee_incident_write_errors_total`.
    pub(crate) fn metrics(&self) -> String {
        format!(
            "# HELP levee_incidents_open sites with an incident open\n# TYPE levee_incidents_open gauge\nlevee_incidents_open {}\n# HELP levee_incident_write_errors_total incident lines that could not be written\n# TYPE levee_incident_write_errors_total counter\nlevee_incident_write_errors_total {}\n",
            self.open_ids().len(),
            self.write_errors.load(Ordering::Relaxed)
        )
    }

    fn write(&self, o: &mut Open, line: &Line) {
        let mut text = serde_json::to_string(line).unwrap_or_default();
        text.push('\n');
        if let Err(e) = o.file.write_all(text.as_bytes()) {
            if self.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("levee: warning: incident record {}: {e}", o.path.display());
            }
        }
    }
}

impl Shared {
    /// Once a second: every site's second, opening, writing and closing incidents.
    pub(crate) fn incidents_tick(&self) {
        let inc = &self.incidents;
        let now_ms = clock::unix_ms();
        let now_s = now_ms / 1000;
        let last = inc.last_second.swap(now_s, Ordering::Relaxed);
        if last == now_s || inc.dir.is_none() {
            return;
        }
        let t = if last == 0 { now_s - 1 } else { last };
        let st = self.state.load();
        let cfg = &st.cfg.incidents;
        let cooldown_s = cfg.cooldown.as_duration().as_secs();
        let fine_for_s = cfg.fine_for.as_duration().as_secs();
        let conns = u64::from(self.tracker.open());
        // Events since the last second, for the open incidents of their site.
        let (events, next) = self
            .events
            .since(inc.last_event.load(Ordering::Relaxed), 10_000);
        inc.last_event.store(next, Ordering::Relaxed);
        let events: Vec<serde_json::Value> = events
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        {
            let mut sites = inc.sites.lock().unwrap_or_else(PoisonError::into_inner);
            for site in &st.sites {
                let sec = site.tally.take(t, conns);
                let rec = sites.entry(site.name.clone()).or_default();
                let mode = site.defense.mode();
                if rec.open.is_none() && mode != levee_detect::Mode::Normal {
                    let before: Vec<Second> = rec.history.iter().cloned().collect();
                    let id = format!("{}-{now_s}", tag(&site.name));
                    let Some(dir) = inc.dir.as_ref() else {
                        continue;
                    };
                    let path = dir.join(file_name(&id));
                    match std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&path)
                    {
                        Ok(file) => {
                            let why = events
                                .iter()
                                .rev()
                                .find(|e| e["event"] == "mode" && e["site"] == site.name.as_str())
                                .and_then(|e| e["why"].as_str())
                                .unwrap_or("")
                                .to_string();
                            let mut o = Open {
                                id: id.clone(),
                                path,
                                file,
                                opened_s: t,
                                calm_since: None,
                                coarse: None,
                            };
                            inc.write(
                                &mut o,
                                &Line::Open {
                                    id: id.clone(),
                                    site: site.name.clone(),
                                    edge: inc.edge.clone(),
                                    opened_unix_ms: t * 1000,
                                    mode: mode.label().to_string(),
                                    why,
                                    before: Before::of(&before),
                                },
                            );
                            site.tally.start_recording(true);
                            rec.open = Some(o);
                            opened.push((site.name.clone(), id));
                        }
                        Err(e) => {
                            if inc.write_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!(
                                    "levee: warning: incident record {}: {e}",
                                    path.display()
                                );
                            }
                        }
                    }
                }
                if rec.open.is_some() && !site.tally.recording.load(Ordering::Relaxed) {
                    // Resumed after a restart.
                    site.tally.start_recording(true);
                }
                if let Some(o) = rec.open.as_mut() {
                    for e in events
                        .iter()
                        .filter(|e| e["site"] == site.name.as_str() || e["site"] == "")
                    {
                        inc.write(o, &Line::Event { event: e.clone() });
                    }
                    if t >= o.opened_s + fine_for_s {
                        let c = o.coarse.get_or_insert_with(|| Second {
                            t,
                            span_s: 0,
                            ..Second::default()
                        });
                        c.absorb(&sec);
                        if c.span_s >= 60 {
                            let row = std::mem::take(c);
                            o.coarse = None;
                            inc.write(o, &Line::Second(row));
                        }
                    } else {
                        inc.write(o, &Line::Second(sec.clone()));
                    }
                    if t % SOURCES_EVERY_S == 0 {
                        let top = site.tally.sources();
                        inc.write(o, &Line::Sources { ts_ms: now_ms, top });
                    }
                    if mode == levee_detect::Mode::Normal {
                        let calm = *o.calm_since.get_or_insert(t);
                        if t >= calm + cooldown_s {
                            if let Some(c) = o.coarse.take() {
                                inc.write(o, &Line::Second(c));
                            }
                            let top = site.tally.sources();
                            inc.write(o, &Line::Sources { ts_ms: now_ms, top });
                            inc.write(
                                o,
                                &Line::Close {
                                    closed_unix_ms: now_ms,
                                },
                            );
                            closed.push((site.name.clone(), o.id.clone()));
                            site.tally.start_recording(false);
                            rec.open = None;
                        }
                    } else {
                        o.calm_since = None;
                    }
                }
                if rec.history.len() >= HISTORY {
                    rec.history.pop_front();
                }
                rec.history.push_back(sec);
            }
        }
        for (site, id) in opened {
            self.events
                .push("incident_opened", &site, serde_json::json!({ "id": id }));
        }
        for (site, id) in closed {
            self.events
                .push("incident_closed", &site, serde_json::json!({ "id": id }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_quantiles() {
        assert_eq!(outcome(Verdict::Allow, Why::Plain), 0);
        assert_eq!(outcome(Verdict::Allow, Why::Note("cache_hit")), 1);
        assert_eq!(
            outcome(Verdict::Challenge, Why::Defense(Reason::Challenge)),
            2
        );
        assert_eq!(
            outcome(Verdict::Block, Why::Defense(Reason::RateLimitIp)),
            4
        );
        assert_eq!(outcome(Verdict::Block, Why::Defense(Reason::RuleBlock)), 5);
        assert_eq!(outcome(Verdict::Shed, Why::Defense(Reason::OriginBusy)), 6);
        assert_eq!(
            outcome(Verdict::Block, Why::Defense(Reason::SendTooSlow)),
            7
        );
        let mut h = [0u64; BUCKETS];
        h[10] = 99; // ~1.5 ms
        h[20] = 1; // ~1.5 s
        assert_eq!(quantile(&h, 0.5), 1.536);
        assert_eq!(quantile(&h, 0.99), 1.536);
        assert!(quantile(&h, 1.0) > 1000.0);
        assert_eq!(quantile(&[0; BUCKETS], 0.5), 0.0);
    }

    #[test]
    fn ids_never_name_a_path_and_prefixes_print() {
        assert!(valid_id("www-1796140000"));
        for bad in ["", "../x", "a/b", ".hidden", "a b", "x\u{0}"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        assert_eq!(
            prefix_text(key_of("192.0.2.77".parse().unwrap())),
            "192.0.2.0/24"
        );
        assert_eq!(
            prefix_text(key_of("2001:db8::1".parse().unwrap())),
            "2001:db8::/64"
        );
    }

    #[test]
    fn the_tally_counts_blocked_prefixes_only_while_recording() {
        let t = Tally::default();
        let ip: IpAddr = "198.51.100.9".parse().unwrap();
        t.record(
            Verdict::Block,
            Why::Defense(Reason::RuleBlock),
            403,
            None,
            ip,
        );
        assert!(t.sources().is_empty());
        t.start_recording(true);
        t.record(
            Verdict::Block,
            Why::Defense(Reason::RuleBlock),
            403,
            None,
            ip,
        );
        t.record(
            Verdict::Block,
            Why::Defense(Reason::RateLimitIp),
            429,
            None,
            ip,
        );
        t.record(Verdict::Allow, Why::Plain, 200, Some(1500), ip);
        let s = t.sources();
        assert_eq!(s[0].requests, 3);
        assert_eq!(s[0].blocked, 1, "a rate limit is not a block");
        let sec = t.take(7, 3);
        assert_eq!(sec.counts, [1, 0, 0, 0, 1, 2, 0, 0]);
        assert!(sec.p99_ms > 1.0 && sec.p99_ms < 2.5);
        assert_eq!(t.take(8, 0).total(), 0);
    }
}
