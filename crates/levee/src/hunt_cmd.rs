//! `levee hunt`: the command line, wired to `levee_hunt`.

use anyhow::{Context, Result};
use std::path::PathBuf;

fn parse_time(s: &str) -> std::result::Result<i64, String> {
    levee_hunt::parse_time(s).ok_or_else(|| {
        format!("{s:?} is not a time: use 2015-05-17, 2015-05-17T10:05:03Z or 2015-05-17T12:05:03+02:00")
    })
}

fn parse_hours(s: &str) -> std::result::Result<(u32, u32), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or("use START-END in hours, e.g. 8-19")?;
    let a: u32 = a.trim().parse().map_err(|_| "START must be an hour 0-23")?;
    let b: u32 = b.trim().parse().map_err(|_| "END must be an hour 1-24")?;
    if a > 23 || b > 24 {
        return Err("hours are 0-24".into());
    }
    Ok((a, b))
}

fn parse_json_field(s: &str) -> std::result::Result<(String, String), String> {
    let (f, k) = s
        .split_once('=')
        .ok_or("use FIELD=KEY, e.g. client=remote_ip")?;
    let mut m = levee_hunt::logs::JsonMapping::default();
    m.set(f, k)?;
    Ok((f.to_string(), k.to_string()))
}

#[derive(clap::Args)]
pub(crate) struct HuntArgs {
    /// Log files or directories (rotated logs, .gz included); `-` for standard input.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Sigma rule files or directories (repeatable), in addition to the
    /// bundled SigmaHQ rules; a rule with a bundled rule's id replaces it.
    #[arg(long)]
    sigma: Vec<PathBuf>,
    /// Leave out the bundled SigmaHQ rules (only --sigma's are used).
    #[arg(long)]
    no_bundled_rules: bool,
    /// Print the Detection Rule License of the bundled SigmaHQ rules and exit.
    #[arg(long, exclusive = true)]
    rules_licence: bool,
    /// Indicator feeds (repeatable): plain lists, CSV, STIX 2.1 bundles, MISP events or feed directories.
    #[arg(long)]
    ioc: Vec<PathBuf>,
    /// Only requests at or after this time (2015-05-17, 2015-05-17T10:00:00Z, ...+02:00).
    #[arg(long, value_parser = parse_time)]
    from: Option<i64>,
    /// Only requests before this time.
    #[arg(long, value_parser = parse_time)]
    to: Option<i64>,
    /// Requests before this time are the pre-incident baseline (egress outliers).
    #[arg(long, value_parser = parse_time)]
    baseline_before: Option<i64>,
    /// The edge's configuration: its route tags (`personal`, `special`,
    /// `export`, `login`, `admin` on `[[site.route]]`) name the routes below,
    /// in addition to any flags.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Path prefixes holding personal data (repeatable), e.g. /api/members.
    #[arg(long)]
    personal: Vec<String>,
    /// Path prefixes that export data (repeatable).
    #[arg(long)]
    export: Vec<String>,
    /// Path prefixes of administration (repeatable).
    #[arg(long)]
    admin: Vec<String>,
    /// Login path prefixes (a successful POST there means the client authenticated).
    #[arg(long)]
    login: Vec<String>,
    /// For other JSON logs: which key holds a record field, e.g. client=remote_ip (repeatable).
    #[arg(long, value_parser = parse_json_field)]
    json_field: Vec<(String, String)>,
    /// Business hours in UTC, START-END.
    #[arg(long, default_value = "7-20", value_parser = parse_hours)]
    business_hours: (u32, u32),
    /// Write the full result (findings, samples, malformed lines) as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the timeline here: `.csv` for CSV, otherwise JSON lines for Timesketch.
    #[arg(long)]
    timeline: Option<PathBuf>,
    /// Write the report here: `.html` for a self-contained page, otherwise Markdown.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Replace client addresses in every output by a keyed HMAC (the key is this file's content).
    #[arg(long)]
    pseudonymize: Option<PathBuf>,
    /// With --pseudonymize: keep the /24 (IPv4) or /48 (IPv6).
    #[arg(long, requires = "pseudonymize")]
    keep_prefix: bool,
    /// Findings at or above this level make the exit status 1.
    #[arg(long, default_value = "low", value_parser = ["informational", "low", "medium", "high", "critical"])]
    fail_on: String,
    /// Threads that match records (default: one per core; the findings are
    /// the same whatever the number).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Leave out the built-in lists of attack tools' User-Agents and botnet
    /// exploit probes (findings `known_tool`, `exploit_probe`).
    #[arg(long)]
    no_builtin: bool,
}

fn write(path: &PathBuf, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Said under `levee hunt --help`: what is bundled.
pub(crate) fn after_help() -> String {
    format!(
        "Bundled rules: {}; each finding names its rule's author. --rules-licence prints the licence; scripts/update-sigma-bundle.sh refreshes the snapshot.",
        levee_hunt::bundle::describe()
    )
}

pub(crate) fn run(mut a: HuntArgs) -> Result<()> {
    if a.rules_licence {
        println!("{}", levee_hunt::bundle::licence_text());
        return Ok(());
    }
    // Route tags declared once, in the edge's configuration.
    if let Some(c) = &a.config {
        let cfg = crate::load(c)?;
        for r in cfg.site.iter().flat_map(|s| s.route.iter()) {
            let paths = r.paths.iter().cloned();
            if r.is_personal() {
                a.personal.extend(paths.clone());
            }
            if r.export {
                a.export.extend(paths.clone());
            }
            if r.login {
                a.login.extend(paths.clone());
            }
            if r.admin {
                a.admin.extend(paths);
            }
        }
    }
    // "Did data leave?" needs no argument but the logs: the detectors
    // always run, and the bundled rules unless left out.
    let rules = match (a.no_bundled_rules, a.sigma.is_empty()) {
        (false, true) => format!("the bundled rules ({})", levee_hunt::bundle::describe()),
        (false, false) => format!(
            "the bundled rules ({}) and those of --sigma",
            levee_hunt::bundle::describe()
        ),
        (true, false) => "the rules of --sigma (no bundled rules)".into(),
        (true, true) => "no Sigma rules".into(),
    };
    eprintln!(
        "levee hunt: {rules}{}, the built-in lists{}, and the exfiltration and abuse detectors (egress, bulk downloads, ID enumeration, personal-data bulk, exports without login, probing, off-hours)",
        if a.ioc.is_empty() { "" } else { ", the --ioc feeds" },
        if a.no_builtin { " left out" } else { "" }
    );
    let key = match &a.pseudonymize {
        Some(p) => match std::fs::read(p) {
            Ok(k) if k.len() >= 16 => Some(k),
            Ok(_) => {
                eprintln!("levee hunt: error: the key file {} must hold at least 16 bytes (e.g. head -c 32 /dev/urandom > key)", p.display());
                std::process::exit(2);
            }
            Err(e) => {
                eprintln!(
                    "levee hunt: error: cannot read the key file {}: {e}",
                    p.display()
                );
                std::process::exit(2);
            }
        },
        None => None,
    };
    let total: u64 = a
        .inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let mut json = levee_hunt::logs::JsonMapping::default();
    for (f, k) in &a.json_field {
        // Validated by the argument parser.
        let _ = json.set(f, k);
    }
    let opts = levee_hunt::Options {
        inputs: a.inputs,
        sigma: a.sigma,
        bundled: !a.no_bundled_rules,
        iocs: a.ioc,
        from_ms: a.from,
        to_ms: a.to,
        json,
        detect: levee_hunt::detect::Config {
            personal: a.personal,
            export: a.export,
            admin: a.admin,
            login: a.login,
            business_hours: a.business_hours,
            baseline_before_ms: a.baseline_before,
            builtin: !a.no_builtin,
            ..Default::default()
        },
        threads: a.threads,
    };
    let started = std::time::Instant::now();
    let mut last = started;
    let mut progress = |bytes: u64| {
        if last.elapsed() >= std::time::Duration::from_millis(500) && total > 0 {
            last = std::time::Instant::now();
            let pct = (bytes as f64 / total as f64 * 100.0).min(100.0);
            let done = (pct / 5.0) as usize;
            eprint!(
                "\rlevee hunt: [{}{}] {pct:5.1}% of {} MiB",
                "#".repeat(done),
                ".".repeat(20 - done.min(20)),
                total >> 20
            );
        }
    };
    let mut summary = match levee_hunt::run(&opts, &mut progress) {
        Ok(s) => s,
        Err(e) => {
            // Unreadable inputs or rules are usage errors (exit status 2).
            eprintln!("levee hunt: error: {e}");
            std::process::exit(2);
        }
    };
    if started.elapsed() >= std::time::Duration::from_millis(500) {
        eprintln!();
    }
    if let Some(k) = key {
        levee_hunt::report::Pseudonymizer::new(&k, a.keep_prefix).summary(&mut summary);
    }
    print!("{}", levee_hunt::table(&summary));
    println!("\n{}", levee_hunt::report::conclusion(&summary));
    if let Some(p) = &a.json {
        let text = serde_json::to_string_pretty(&summary).context("serialising the result")?;
        write(p, &text)?;
    }
    if let Some(p) = &a.timeline {
        let csv = p.extension().is_some_and(|e| e == "csv");
        let text = if csv {
            levee_hunt::report::timeline_csv(&summary.timeline)
        } else {
            levee_hunt::report::timeline_jsonl(&summary.timeline)
        };
        write(p, &text)?;
    }
    if let Some(p) = &a.report {
        let html = p.extension().is_some_and(|e| e == "html" || e == "htm");
        let text = if html {
            levee_hunt::report::html(&summary)
        } else {
            levee_hunt::report::markdown(&summary)
        };
        write(p, &text)?;
    }
    let bar = levee_hunt::level_rank(&a.fail_on);
    let levels = summary
        .findings
        .iter()
        .map(|f| f.level.as_str())
        .chain(summary.correlations.iter().map(|c| c.level.as_str()))
        .chain(summary.detections.iter().map(|d| d.level));
    // A sighting of an indicator of compromise is always a finding.
    if !summary.ioc_findings.is_empty()
        || levels.into_iter().any(|l| levee_hunt::level_rank(l) >= bar)
    {
        std::process::exit(1);
    }
    Ok(())
}
