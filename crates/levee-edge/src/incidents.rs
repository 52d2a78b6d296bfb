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

use crate::clock;
use crate::events::Events;
use crate::state::State;
use levee_incident::{Before, Line, Second};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Seconds of history kept to describe "before".
const HISTORY: usize = 60;
/// A site's recent seconds with their modes, and its open incident.
pub(crate) type Live = (
    String,
    Vec<(Second, &'static str)>,
    Option<serde_json::Value>,
);

/// Seconds the dashboard is given on connecting (with each second's mode).
const LIVE: usize = 300;
/// Seconds before the opening that start a record's series.
const LEAD_IN: usize = 10;
/// The incidents `GET /incidents` lists, newest first, at most.
const LIST: usize = 100;
/// Top sources are written this often.
const SOURCES_EVERY_S: u64 = 10;

/// An alert to send: site, kind, incident, mode, peak rate, vectors, why.
type Alert = (
    String,
    &'static str,
    String,
    String,
    f64,
    Vec<String>,
    String,
);

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
    /// For alerts: the peak rate so far and the first vectors.
    peak_rps: f64,
    vectors: Vec<String>,
}

impl Open {
    fn new(id: String, path: PathBuf, file: std::fs::File, opened_s: u64) -> Open {
        Open {
            id,
            path,
            file,
            opened_s,
            calm_since: None,
            coarse: None,
            peak_rps: 0.0,
            vectors: Vec::new(),
        }
    }
}

#[derive(Debug, Default)]
struct SiteRec {
    history: VecDeque<Second>,
    /// The last `LIVE` seconds and the mode at their end, for the dashboard.
    live: VecDeque<(Second, &'static str)>,
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
    /// The packet filter's drops so far, as last seen.
    xdp_seen: AtomicU64,
    write_errors: AtomicU64,
    /// Unix ms of the last retention sweep of the directory.
    last_sweep: AtomicU64,
    pub(crate) alerts: crate::alerts::Alerts,
}

/// Packets the filter dropped so far, from its published counters.
fn xdp_drops(text: &str) -> u64 {
    const KEPT: [&str; 5] = [
        "pass",
        "allow_list",
        "non_ip",
        "synproxy_synack",
        "synproxy_cookie_ok",
    ];
    text.lines()
        .filter_map(|l| l.strip_prefix("levee_xdp_packets_total{reason=\""))
        .filter_map(|l| {
            let (reason, rest) = l.split_once("\"}")?;
            let n: u64 = rest.trim().parse().ok()?;
            (!KEPT.contains(&reason)).then_some(n)
        })
        .sum()
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
        me.alerts = crate::alerts::Alerts::start(cfg)?;
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
            rec.open = Some(Open::new(id, path, file, opened / 1000));
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

    /// `levee_incidents_open`, `levee_incident_write_errors_total`, `levee_alerts_total`.
    /// Per site, the seconds after `after` (unix s) with their modes, and
    /// the open incident (id, opened, peak so far), for the dashboard.
    pub(crate) fn live(&self, after: u64) -> Vec<Live> {
        let sites = self.sites.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = sites
            .iter()
            .map(|(name, rec)| {
                let secs = rec.live.iter().filter(|(s, _)| s.t > after).cloned().collect();
                let open = rec.open.as_ref().map(|o| {
                    serde_json::json!({"id": o.id, "opened_s": o.opened_s, "peak_rps": o.peak_rps, "vectors": o.vectors.len()})
                });
                (name.clone(), secs, open)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub(crate) fn metrics(&self) -> String {
        self.alerts.metrics() + &format!(
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

impl Incidents {
    /// Delete closed records older than `[retention] incidents_days`, each
    /// recorded in the retention ledger first; nothing while a hold is in
    /// force. Returns the ids deleted.
    fn sweep(&self, cfg: &levee_config::Config, now_ms: u64) -> Vec<String> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let r = &cfg.retention;
        let max_age_ms = u64::from(r.incidents_days) * 86_400_000;
        let expired: Vec<(PathBuf, levee_incident::Summary)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .filter_map(|p| {
                let text = std::fs::read_to_string(&p).ok()?;
                let s = levee_incident::read(&p.display().to_string(), &text);
                let closed = s.closed_unix_ms?;
                (now_ms.saturating_sub(closed) > max_age_ms).then_some((p, s))
            })
            .collect();
        if expired.is_empty() {
            return Vec::new();
        }
        let path = crate::ledger::path_of(&cfg.access_log);
        let mut ledger = match crate::ledger::Ledger::open(path) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("levee: retention: incident records kept: {e}");
                return Vec::new();
            }
        };
        if ledger.holds().iter().any(|&until| until > now_ms) {
            return Vec::new();
        }
        let ledger_dir = ledger.dir().to_path_buf();
        let mut deleted = Vec::new();
        for (p, s) in expired {
            let Ok(hash) = crate::retention::sha256_of(&p) else {
                continue;
            };
            let detail = serde_json::json!({
                "tier": "incidents",
                "days": r.incidents_days,
                "incident": s.id,
                "site": s.site,
                "opened_ms": s.opened_unix_ms,
                "closed_ms": s.closed_unix_ms,
                "sha256": hash,
            });
            let subject = crate::retention::subject(&ledger_dir, &p);
            if ledger
                .append(now_ms, "file_deleted", &subject, detail)
                .is_err()
            {
                continue;
            }
            match std::fs::remove_file(&p) {
                Ok(()) => deleted.push(s.id),
                Err(e) => eprintln!("levee: retention: cannot delete {}: {e}", p.display()),
            }
        }
        deleted
    }
}

impl Incidents {
    /// Once a second: every site's second, opening, writing and closing
    /// incidents; every `[retention] every`, the sweep of old records.
    /// `conns` is the number of open client connections.
    /// `xdp` holds the packet filter's published counters (Prometheus text;
    /// empty without it), read once a second: their drops since the last
    /// second go into every site's row (the filter drops packets, not a
    /// site's requests).
    pub(crate) fn tick(
        &self,
        state: &arc_swap::ArcSwap<State>,
        events: &Events,
        conns: u64,
        xdp: &Mutex<String>,
    ) {
        let inc = self;
        let now_ms = clock::unix_ms();
        {
            let st = state.load();
            let every = st.cfg.retention.every.as_duration().as_millis() as u64;
            let last = inc.last_sweep.load(Ordering::Relaxed);
            if st.cfg.retention.enabled && (last == 0 || now_ms >= last + every) {
                inc.last_sweep.store(now_ms, Ordering::Relaxed);
                for id in inc.sweep(&st.cfg, now_ms) {
                    events.push("incident_deleted", "", serde_json::json!({ "id": id }));
                }
            }
        }
        let now_s = now_ms / 1000;
        let last = inc.last_second.swap(now_s, Ordering::Relaxed);
        if last == now_s {
            return;
        }
        let t = if last == 0 { now_s - 1 } else { last };
        let dropped = xdp_drops(&xdp.lock().unwrap_or_else(PoisonError::into_inner));
        let before = inc.xdp_seen.swap(dropped, Ordering::Relaxed);
        // A restarted filter starts its counters again.
        let xdp_delta = if before == 0 {
            0
        } else {
            dropped.saturating_sub(before)
        };
        let st = state.load();
        let cfg = &st.cfg.incidents;
        let cooldown_s = cfg.cooldown.as_duration().as_secs();
        let fine_for_s = cfg.fine_for.as_duration().as_secs();
        // Events since the last second, for the open incidents of their site.
        let ring = events;
        let (lines, next) = ring.since(inc.last_event.load(Ordering::Relaxed), 10_000);
        inc.last_event.store(next, Ordering::Relaxed);
        let events: Vec<serde_json::Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let mut opened = Vec::new();
        let mut closed = Vec::new();
        let mut alerts: Vec<Alert> = Vec::new();
        {
            let mut sites = inc.sites.lock().unwrap_or_else(PoisonError::into_inner);
            for site in &st.sites {
                let mut sec = site.tally.take(t, conns);
                sec.xdp_drops = xdp_delta;
                let rec = sites.entry(site.name.clone()).or_default();
                let mode = site.defense.mode();
                if rec.live.len() >= LIVE {
                    rec.live.pop_front();
                }
                rec.live.push_back((sec.clone(), mode.label()));
                if rec.open.is_none() && mode != levee_detect::Mode::Normal && inc.dir.is_some() {
                    let before: Vec<Second> = rec.history.iter().cloned().collect();
                    let Some(dir) = inc.dir.as_ref() else {
                        continue;
                    };
                    // A new file always: a second incident in the same second gets a suffix.
                    let mut id = format!("{}-{now_s}", tag(&site.name));
                    for n in 2..100 {
                        if !dir.join(file_name(&id)).exists() {
                            break;
                        }
                        id = format!("{}-{now_s}-{n}", tag(&site.name));
                    }
                    let path = dir.join(file_name(&id));
                    match std::fs::OpenOptions::new()
                        .create_new(true)
                        .write(true)
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
                            let mut o = Open::new(id.clone(), path, file, t);
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
                            // The series starts with the rise: the seconds just before.
                            for b in before.iter().rev().take(LEAD_IN).rev() {
                                inc.write(&mut o, &Line::Second(b.clone()));
                            }
                            site.tally.start_recording(true);
                            alerts.push((
                                site.name.clone(),
                                "incident_opened",
                                id.clone(),
                                mode.label().to_string(),
                                sec.rate(),
                                Vec::new(),
                                String::new(),
                            ));
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
                if rec.open.is_some() && !site.tally.is_recording() {
                    // Resumed after a restart.
                    site.tally.start_recording(true);
                }
                if let Some(o) = rec.open.as_mut() {
                    o.peak_rps = o.peak_rps.max(sec.rate());
                    for e in events
                        .iter()
                        .filter(|e| e["site"] == site.name.as_str() || e["site"] == "")
                    {
                        inc.write(o, &Line::Event { event: e.clone() });
                        if e["event"] == "rule_added" && o.vectors.len() < 3 {
                            if let Some(v) = e["rule"]["value"].as_str() {
                                o.vectors.push(v.to_string());
                            }
                        }
                        if e["event"] == "mode" && e["site"] == site.name.as_str() {
                            alerts.push((
                                site.name.clone(),
                                "mode_changed",
                                o.id.clone(),
                                e["to"].as_str().unwrap_or("").to_string(),
                                o.peak_rps,
                                o.vectors.clone(),
                                e["why"].as_str().unwrap_or("").to_string(),
                            ));
                        }
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
                            alerts.push((
                                site.name.clone(),
                                "incident_closed",
                                o.id.clone(),
                                "normal".into(),
                                o.peak_rps,
                                o.vectors.clone(),
                                String::new(),
                            ));
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
            ring.push("incident_opened", &site, serde_json::json!({ "id": id }));
        }
        for (site, id) in closed {
            ring.push("incident_closed", &site, serde_json::json!({ "id": id }));
        }
        for (site, kind, id, mode, peak, vectors, why) in alerts {
            inc.alerts.send(serde_json::json!({
                "kind": kind, "site": site, "mode": mode, "incident": id, "edge": inc.edge,
                "ts_ms": now_ms, "peak_rps": peak, "vectors": vectors, "why": why,
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_drops_are_its_counters_but_passes_and_answers() {
        let t = "# HELP x\nlevee_xdp_packets_total{reason=\"pass\"} 900\nlevee_xdp_packets_total{reason=\"rate_syn\"} 40\nlevee_xdp_packets_total{reason=\"blocked_prefix\"} 2\nlevee_xdp_packets_total{reason=\"synproxy_synack\"} 7\nlevee_xdp_mirrored_blocks 3\n";
        assert_eq!(xdp_drops(t), 42);
        assert_eq!(xdp_drops(""), 0);
    }

    #[test]
    fn ids_never_name_a_path() {
        assert!(valid_id("www-1796140000"));
        for bad in ["", "../x", "a/b", ".hidden", "a b", "x\u{0}"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        assert_eq!(tag("a b/c"), "a_b_c");
    }
}
