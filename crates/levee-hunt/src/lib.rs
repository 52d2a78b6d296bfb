//! `levee hunt`: review web access logs after an attack, offline.
//!
//! It reads logs (nginx/Apache combined and common formats, JSON lines such
//! as Levee's own access log; plain or gzip-compressed files, directories
//! of rotated logs, standard input) in batches matched on several threads
//! (`batch`), counts and reports every malformed line with its file and
//! line (never fatal, never dropped silently), filters by time, and matches
//! every record against IoC feeds ([`ioc`]), Sigma rules for web servers
//! and proxies (`levee-sigma`, behind one [`prefilter`]) through a
//! field-mapping profile for web logs ([`fields`]), correlation rules, the
//! exfiltration and abuse detectors ([`detect`], with routes inferred from
//! the log in [`infer`] and the built-in lists of [`tools`]). Findings carry
//! the rule's title, id, level, tags and author (the rules' licence
//! requires the author), counts, first and last seen, and sample lines with
//! file:line; [`report`] writes the table, JSON, timeline and reports.

mod batch;
pub mod bundle;
pub mod detect;
pub mod fields;
pub mod infer;
pub mod ioc;
pub mod logs;
pub mod prefilter;
pub mod report;
pub mod time;
pub mod tools;

pub use report::table;
pub use time::{fmt_ms, parse_time};

use batch::Out;
use levee_sigma::correlation::{Correlation, Engine};
use levee_sigma::{LoadError, Loaded, Rule};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

/// Why a hunt could not run (bad input is never this: it is counted).
#[derive(Debug, thiserror::Error)]
pub enum HuntError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("no Sigma rules in {0} (give a directory of .yml files)")]
    NoRules(String),
}

/// A line that could not be parsed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Malformed {
    pub file: String,
    pub line: u64,
    pub reason: &'static str,
}

/// One input file.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileStat {
    pub path: String,
    pub lines: u64,
    pub records: u64,
    pub malformed: u64,
    pub outside_period: u64,
}

/// A sample of what matched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Sample {
    pub file: String,
    pub line: u64,
    pub text: String,
}

/// What a rule found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Finding {
    pub title: String,
    pub rule_id: String,
    pub level: String,
    pub tags: Vec<String>,
    pub author: String,
    pub rule_file: String,
    pub count: u64,
    pub clients: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub samples: Vec<Sample>,
}

/// What a correlation rule found, per group.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CorrelationFinding {
    pub title: String,
    pub rule_id: String,
    pub level: String,
    pub tags: Vec<String>,
    pub author: String,
    pub rule_file: String,
    /// `event_count`, `value_count`, `temporal`, `temporal_ordered`.
    pub kind: String,
    pub group_by: Vec<String>,
    pub hits: Vec<CorrelationHit>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CorrelationHit {
    pub group: Vec<String>,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: u64,
}

/// What an indicator of compromise matched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IocFinding {
    pub kind: ioc::Kind,
    pub value: String,
    /// Where the indicator came from (feed file and line or id).
    pub source: String,
    /// The record fields it was seen in (client, host, referer, url, ...).
    pub fields: Vec<&'static str>,
    pub count: u64,
    pub clients: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub samples: Vec<Sample>,
}

/// What was checked and what was found.
#[derive(Debug, Default, serde::Serialize)]
pub struct Summary {
    pub files: Vec<FileStat>,
    pub records: u64,
    pub malformed: u64,
    /// The first malformed lines (at most 1,000; all are counted).
    pub malformed_lines: Vec<Malformed>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
    /// Web rules loaded (bundled and given).
    pub rules_loaded: usize,
    /// Of the rules (web or not), those from the bundle, and the bundled
    /// rules replaced by a given rule with the same id.
    pub rules_bundled: usize,
    pub rules_replaced: usize,
    /// The bundled snapshot, when it was used.
    pub rules_bundle: Option<bundle::Snapshot>,
    /// Rules for other log sources (not web server or proxy), by file.
    pub rules_not_web: Vec<String>,
    pub rules_failed: Vec<String>,
    pub correlations_loaded: usize,
    /// Indicator files read, indicators loaded, and those that could not be used.
    pub ioc_files: Vec<String>,
    /// Indicators read from the feeds, and distinct ones kept.
    pub iocs_read: usize,
    pub iocs_loaded: usize,
    pub iocs_skipped: Vec<ioc::Skipped>,
    pub ioc_findings: Vec<IocFinding>,
    pub findings: Vec<Finding>,
    pub correlations: Vec<CorrelationFinding>,
    /// Exfiltration and abuse detectors.
    pub detections: Vec<detect::Finding>,
    pub detector_untracked_requests: u64,
    /// Every matched request and finding in time order (bounded by `MAX_TIMELINE`).
    #[serde(skip)]
    pub timeline: Vec<TimelineEvent>,
    pub timeline_truncated: u64,
    /// Matches not kept for correlation (beyond 10 million).
    pub correlation_events_dropped: u64,
}

/// Options of a hunt.
#[derive(Debug, Default)]
pub struct Options {
    /// Files or directories; `-` is standard input.
    pub inputs: Vec<PathBuf>,
    /// Sigma rule files or directories.
    pub sigma: Vec<PathBuf>,
    /// Whether the bundled SigmaHQ rules are used beside them.
    pub bundled: bool,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub json: logs::JsonMapping,
    /// Indicator feeds: plain lists, CSV, STIX 2.1 bundles, MISP events or feed directories.
    pub iocs: Vec<PathBuf>,
    /// The exfiltration and abuse detectors' view of the site.
    pub detect: detect::Config,
    /// Threads that match records (0: one per core). The findings are the
    /// same whatever the number.
    pub threads: usize,
}

/// One event of the timeline (a matched request or a detector's finding).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TimelineEvent {
    pub ts_ms: i64,
    /// `sigma`, `ioc`, `correlation`, or a detector's name.
    pub source: String,
    pub level: String,
    pub what: String,
    pub client: String,
    /// `file:line` of the log line, when there is one.
    pub place: String,
    pub text: String,
}

/// At most this many request events are kept for the timeline.
pub const MAX_TIMELINE: usize = 1_000_000;

/// Load indicator feeds (format by extension and content).
pub fn load_iocs(paths: &[PathBuf]) -> Result<(ioc::Loaded, Vec<String>), HuntError> {
    let mut files = Vec::new();
    for p in paths {
        walk(p, &[], &mut files)?;
    }
    let mut all = ioc::Loaded::default();
    let mut names = Vec::new();
    for f in files {
        let name = f.display().to_string();
        if f.file_name()
            .is_some_and(|n| n == "manifest.json" || n == "hashes.csv")
        {
            continue; // MISP feed bookkeeping
        }
        let text = std::fs::read_to_string(&f).map_err(|e| HuntError::Read {
            path: name.clone(),
            source: e,
        })?;
        let ext = f.extension().and_then(|e| e.to_str()).unwrap_or("");
        let loaded = if ext == "json" || text.trim_start().starts_with('{') {
            let is_misp = text.contains("\"Attribute\"") || text.contains("\"Event\"");
            let r = if is_misp {
                ioc::misp(&text, &name)
            } else {
                ioc::stix(&text, &name)
            };
            r.unwrap_or_else(|reason| ioc::Loaded {
                iocs: Vec::new(),
                skipped: vec![ioc::Skipped {
                    source: name.clone(),
                    value: String::new(),
                    reason,
                }],
            })
        } else if ext == "csv" {
            ioc::csv(&text, &name)
        } else {
            ioc::plain(&text, &name)
        };
        all.iocs.extend(loaded.iocs);
        all.skipped.extend(loaded.skipped);
        names.push(name);
    }
    Ok((all, names))
}

fn walk(p: &Path, ext: &[&str], out: &mut Vec<PathBuf>) -> Result<(), HuntError> {
    let meta = std::fs::metadata(p).map_err(|e| HuntError::Read {
        path: p.display().to_string(),
        source: e,
    })?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(|e| HuntError::Read {
                path: p.display().to_string(),
                source: e,
            })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, ext, out)?;
        }
    } else if ext.is_empty() || ext.iter().any(|x| p.extension().is_some_and(|e| e == *x)) {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// Rules, correlation rules, and the rules that could not be loaded.
pub type RuleSet = (Vec<Rule>, Vec<Correlation>, Vec<LoadError>);

/// Load rules; failures are returned by name, never dropped.
pub fn load_rules(paths: &[PathBuf]) -> Result<RuleSet, HuntError> {
    Ok(load_rules_and_bundle(paths, false)?.0)
}

/// How the bundled rules were used.
#[derive(Debug, Clone, Copy, Default)]
pub struct BundleUse {
    /// Bundled rules loaded (web or not), after replacement.
    pub loaded: usize,
    /// Bundled rules left out because a rule given had the same id.
    pub replaced: usize,
    /// Rules (and correlations) from the files given.
    pub from_files: usize,
}

/// Load the rules of `paths` and, with `bundled`, the bundled SigmaHQ
/// rules beside them: a rule given with a bundled rule's id replaces it
/// (a newer copy of the same rule is not counted twice).
pub fn load_rules_and_bundle(
    paths: &[PathBuf],
    bundled: bool,
) -> Result<(RuleSet, BundleUse), HuntError> {
    let mut files = Vec::new();
    for p in paths {
        walk(p, &["yml", "yaml"], &mut files)?;
    }
    let mut rules = Vec::new();
    let mut corrs = Vec::new();
    let mut failed = Vec::new();
    let mut take = |text: &str, name: &str, rules: &mut Vec<Rule>, corrs: &mut Vec<Correlation>| {
        for r in levee_sigma::load_all(text, name) {
            match r {
                Ok(Loaded::Rule(r)) => rules.push(*r),
                Ok(Loaded::Correlation(c)) => corrs.push(*c),
                Err(e) => failed.push(e),
            }
        }
    };
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|e| HuntError::Read {
            path: f.display().to_string(),
            source: e,
        })?;
        take(&text, &f.display().to_string(), &mut rules, &mut corrs);
    }
    let mut used = BundleUse {
        from_files: rules.len() + corrs.len(),
        ..BundleUse::default()
    };
    if bundled {
        let given: HashSet<String> = rules
            .iter()
            .map(|r| r.id.clone())
            .chain(corrs.iter().map(|c| c.id.clone()))
            .filter(|id| !id.is_empty())
            .collect();
        let (mut b_rules, mut b_corrs) = (Vec::new(), Vec::new());
        // A file whose every rule is replaced is not parsed.
        let mut skipped = 0;
        for (name, text) in bundle::rules() {
            match bundle::ids(text) {
                Some(ids) if ids.iter().all(|id| given.contains(*id)) => skipped += ids.len(),
                _ => take(text, &name, &mut b_rules, &mut b_corrs),
            }
        }
        let before = b_rules.len() + b_corrs.len();
        b_rules.retain(|r| !given.contains(&r.id));
        b_corrs.retain(|c| !given.contains(&c.id));
        used.loaded = b_rules.len() + b_corrs.len();
        used.replaced = before - used.loaded + skipped;
        b_rules.append(&mut rules);
        rules = b_rules;
        b_corrs.append(&mut corrs);
        corrs = b_corrs;
    }
    // A correlation naming no loaded rule is an error, not a silent no-op.
    corrs.retain(|c| {
        let missing: Vec<&String> = c
            .rules
            .iter()
            .filter(|n| !rules.iter().any(|r| r.name == **n || r.id == **n))
            .collect();
        if missing.is_empty() {
            return true;
        }
        failed.push(LoadError {
            file: c.file.clone(),
            title: c.title.clone(),
            reason: format!("correlates rules that were not loaded: {missing:?}"),
        });
        false
    });
    Ok(((rules, corrs, failed), used))
}

struct Acc {
    count: u64,
    clients: HashSet<String>,
    first: i64,
    last: i64,
    samples: Vec<Sample>,
}

impl Acc {
    fn add(&mut self, rec: &logs::Record<'_>, file: &str, line: u64, text: &str) {
        self.count += 1;
        if self.clients.len() < 100_000 {
            self.clients.insert(rec.client.to_string());
        }
        self.first = self.first.min(rec.ts_ms);
        self.last = self.last.max(rec.ts_ms);
        if self.samples.len() < 5 {
            self.samples.push(Sample {
                file: file.to_string(),
                line,
                text: head(text, 500),
            });
        }
    }
}

/// The first `chars` characters of `text`.
pub(crate) fn head(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((i, _)) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// Run a hunt. `progress(bytes_read_total)` is called now and then.
pub fn run(opts: &Options, progress: &mut dyn FnMut(u64)) -> Result<Summary, HuntError> {
    let ((all_rules, corrs, failed), used) = load_rules_and_bundle(&opts.sigma, opts.bundled)?;
    let (feeds, ioc_files) = load_iocs(&opts.iocs)?;
    let iocs_read = feeds.iocs.len();
    let index = ioc::Index::new(feeds.iocs);
    let mut s = Summary {
        rules_failed: failed.iter().map(ToString::to_string).collect(),
        ..Summary::default()
    };
    let mut rules = Vec::new();
    for r in all_rules {
        if r.is_web() {
            rules.push(r);
        } else {
            s.rules_not_web.push(format!("{}: {}", r.file, r.title));
        }
    }
    s.rules_loaded = rules.len();
    s.correlations_loaded = corrs.len();
    s.ioc_files = ioc_files;
    s.iocs_read = iocs_read;
    s.iocs_loaded = index.iocs.len();
    s.iocs_skipped = feeds.skipped;
    let mut ioc_acc: BTreeMap<usize, (Acc, Vec<&'static str>)> = BTreeMap::new();
    let mut det = detect::Detectors::new(opts.detect.clone());
    let mut timeline: Vec<TimelineEvent> = Vec::new();
    let mut tl = |s: &mut Summary, e: TimelineEvent| {
        if timeline.len() < MAX_TIMELINE {
            timeline.push(e);
        } else {
            s.timeline_truncated += 1;
        }
    };
    // For each rule: the (correlation, position) pairs that use it, and whether it reports itself.
    let uses: Vec<Vec<(usize, usize)>> = rules
        .iter()
        .map(|r| {
            corrs
                .iter()
                .enumerate()
                .flat_map(|(ci, c)| {
                    c.rules
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| **n == r.name || **n == r.id)
                        .map(move |(pos, _)| (ci, pos))
                })
                .collect()
        })
        .collect();
    let reports: Vec<bool> = uses
        .iter()
        .map(|u| u.is_empty() || u.iter().any(|(ci, _)| corrs[*ci].generate))
        .collect();
    const MAX_CORR_EVENTS: usize = 10_000_000;
    let mut corr_events: Vec<(i64, usize, usize, Vec<String>, String)> = Vec::new();
    s.rules_bundled = used.loaded;
    s.rules_replaced = used.replaced;
    s.rules_bundle = opts.bundled.then(bundle::snapshot).flatten();
    if used.from_files == 0 && s.rules_failed.is_empty() && !opts.sigma.is_empty() {
        return Err(HuntError::NoRules(
            opts.sigma
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    let mut inputs = Vec::new();
    for p in &opts.inputs {
        if p == Path::new("-") {
            inputs.push(p.clone());
        } else {
            walk(p, &[], &mut inputs)?;
        }
    }
    let mut acc: BTreeMap<usize, Acc> = BTreeMap::new();
    let mut bytes_total = 0u64;
    let needles = detect::hint_needles();
    let groups: Vec<&[&str]> = needles.iter().map(Vec::as_slice).collect();
    let prefilter = prefilter::Prefilter::new(&rules, &groups);
    let work = batch::Work {
        rules: &rules,
        prefilter: &prefilter,
        index: &index,
        uses: &uses,
        corrs: &corrs,
        opts,
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    // Take a batch's results in order.
    let mut take = |outs: &mut Vec<Out<'_>>, name: &str, stat: &mut FileStat| {
        for out in outs.iter_mut() {
            let (line_no, text, rec, iocs, hits, hints) = match out {
                Out::Blank => {
                    stat.lines -= 1;
                    continue;
                }
                &mut Out::Malformed { line_no, reason } => {
                    stat.malformed += 1;
                    s.malformed += 1;
                    if s.malformed_lines.len() < 1000 {
                        s.malformed_lines.push(Malformed {
                            file: name.to_string(),
                            line: line_no,
                            reason,
                        });
                    }
                    continue;
                }
                Out::Outside => {
                    stat.outside_period += 1;
                    continue;
                }
                Out::Rec(m) => (
                    m.line_no,
                    m.text,
                    &m.rec,
                    &m.iocs,
                    std::mem::take(&mut m.hits),
                    m.hints,
                ),
            };
            stat.records += 1;
            s.first_ms = Some(s.first_ms.map_or(rec.ts_ms, |f| f.min(rec.ts_ms)));
            s.last_ms = Some(s.last_ms.map_or(rec.ts_ms, |l| l.max(rec.ts_ms)));
            det.push_hinted(rec, name, line_no, text, detect::Hints(hints));
            for &(i, field) in iocs {
                let x = &index.iocs[i];
                tl(
                    &mut s,
                    TimelineEvent {
                        ts_ms: rec.ts_ms,
                        source: "ioc".into(),
                        level: "high".into(),
                        what: format!("IoC {:?} {} ({}) in {field}", x.kind, x.value, x.source),
                        client: rec.client.to_string(),
                        place: format!("{name}:{line_no}"),
                        text: head(text, 500),
                    },
                );
                let (a, fields) = ioc_acc.entry(i).or_insert_with(|| {
                    (
                        Acc {
                            count: 0,
                            clients: HashSet::new(),
                            first: rec.ts_ms,
                            last: rec.ts_ms,
                            samples: Vec::new(),
                        },
                        Vec::new(),
                    )
                });
                a.add(rec, name, line_no, text);
                if !fields.contains(&field) {
                    fields.push(field);
                }
            }
            for (i, corr) in hits {
                let rule = &rules[i];
                for (ci, pos, group, value) in corr {
                    if corr_events.len() >= MAX_CORR_EVENTS {
                        s.correlation_events_dropped += 1;
                        continue;
                    }
                    corr_events.push((rec.ts_ms, ci, pos, group, value));
                }
                if !reports[i] {
                    continue;
                }
                tl(
                    &mut s,
                    TimelineEvent {
                        ts_ms: rec.ts_ms,
                        source: "sigma".into(),
                        level: rule.level.clone(),
                        what: format!("{} ({})", rule.title, rule.author),
                        client: rec.client.to_string(),
                        place: format!("{name}:{line_no}"),
                        text: head(text, 500),
                    },
                );
                let a = acc.entry(i).or_insert_with(|| Acc {
                    count: 0,
                    clients: HashSet::new(),
                    first: rec.ts_ms,
                    last: rec.ts_ms,
                    samples: Vec::new(),
                });
                a.add(rec, name, line_no, text);
            }
        }
    };
    let mut files: Vec<FileStat> = inputs
        .iter()
        .map(|p| FileStat {
            path: p.display().to_string(),
            ..FileStat::default()
        })
        .collect();
    let mut bombs = Vec::new();
    // Batches are read and matched in parallel, and their results taken
    // here in order, so a run on several cores finds exactly what one does.
    let mut lines_seen = 0u64;
    work.run(&inputs, threads, |step| match step {
        batch::Step::Lines { file, bytes, outs } => {
            let Some(stat) = files.get_mut(file) else {
                return;
            };
            bytes_total += bytes;
            stat.lines += outs.len() as u64;
            let before = lines_seen;
            lines_seen += outs.len() as u64;
            let name = stat.path.clone();
            take(outs, &name, stat);
            // About every 65,536 lines.
            if before >> 16 != lines_seen >> 16 {
                progress(bytes_total);
            }
        }
        batch::Step::End {
            file,
            last_line,
            bomb,
        } => {
            if let (true, Some(stat)) = (bomb, files.get_mut(file)) {
                stat.malformed += 1;
                bombs.push(Malformed {
                    file: stat.path.clone(),
                    line: last_line,
                    reason: "gzip expands over 200 times its size: the rest is not read (a decompression bomb?)",
                });
            }
        }
    })?;
    for stat in files {
        s.records += stat.records;
        s.files.push(stat);
    }
    s.malformed += bombs.len() as u64;
    s.malformed_lines.extend(bombs);
    progress(bytes_total);
    // Correlations, over the matches in time order (logs of several files may interleave).
    corr_events.sort_by_key(|e| e.0);
    let mut engines: Vec<Engine> = corrs.into_iter().map(Engine::new).collect();
    for (ts, ci, pos, group, value) in corr_events {
        engines[ci].push(ts, pos, group, value);
    }
    for e in engines {
        if e.hits.is_empty() {
            continue;
        }
        let c = &e.c;
        s.correlations.push(CorrelationFinding {
            title: c.title.clone(),
            rule_id: c.id.clone(),
            level: c.level.clone(),
            tags: c.tags.clone(),
            author: c.author.clone(),
            rule_file: c.file.clone(),
            kind: format!("{:?}", c.kind),
            group_by: c.group_by.clone(),
            hits: e
                .hits
                .iter()
                .map(|h| CorrelationHit {
                    group: h.group.clone(),
                    first_ms: h.first_ms,
                    last_ms: h.last_ms,
                    count: h.count,
                })
                .collect(),
        });
    }
    for (i, (a, fields)) in ioc_acc {
        let x = &index.iocs[i];
        s.ioc_findings.push(IocFinding {
            kind: x.kind,
            value: x.value.clone(),
            source: x.source.clone(),
            fields,
            count: a.count,
            clients: a.clients.len() as u64,
            first_ms: a.first,
            last_ms: a.last,
            samples: a.samples,
        });
    }
    s.ioc_findings
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
    s.detector_untracked_requests = det.untracked;
    s.detections = det.report();
    for d in &s.detections {
        timeline.push(TimelineEvent {
            ts_ms: d.first_ms,
            source: d.detector.into(),
            level: d.level.into(),
            what: d.summary.clone(),
            client: d.client.clone(),
            place: d
                .samples
                .first()
                .map(|x| format!("{}:{}", x.file, x.line))
                .unwrap_or_default(),
            text: String::new(),
        });
    }
    for c in &s.correlations {
        for h in &c.hits {
            timeline.push(TimelineEvent {
                ts_ms: h.first_ms,
                source: "correlation".into(),
                level: c.level.clone(),
                what: format!("{} ({}): {} for {:?}", c.title, c.author, h.count, h.group),
                client: h.group.join(","),
                place: String::new(),
                text: String::new(),
            });
        }
    }
    timeline.sort_by_key(|e| e.ts_ms);
    s.timeline = timeline;
    for (i, a) in acc {
        let r = &rules[i];
        s.findings.push(Finding {
            title: r.title.clone(),
            rule_id: r.id.clone(),
            level: r.level.clone(),
            tags: r.tags.clone(),
            author: r.author.clone(),
            rule_file: r.file.clone(),
            count: a.count,
            clients: a.clients.len() as u64,
            first_ms: a.first,
            last_ms: a.last,
            samples: a.samples,
        });
    }
    s.findings.sort_by(|a, b| {
        level_rank(&b.level)
            .cmp(&level_rank(&a.level))
            .then(b.count.cmp(&a.count))
            .then(a.title.cmp(&b.title))
    });
    Ok(s)
}

/// Sigma levels, ordered.
pub fn level_rank(l: &str) -> u8 {
    match l {
        "critical" => 5,
        "high" => 4,
        "medium" => 3,
        "low" => 2,
        "informational" => 1,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_head_is_cut_at_a_character_not_a_byte() {
        assert_eq!(super::head("abc", 2), "ab");
        assert_eq!(super::head("abc", 3), "abc");
        assert_eq!(super::head("abc", 9), "abc");
        assert_eq!(super::head("é€x", 2), "é€");
        assert_eq!(super::head("", 1), "");
    }
}
