//! `levee hunt` on third-party material (`../shared/data`: SigmaHQ rules, a
//! real Apache access log): every rule loads, the hits on the real log are
//! frozen in a golden file (reviewed: see the comments there), and bad
//! input is counted with file:line, never fatal.

use super::*;
use std::path::Path;

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    if p.join("sigma").is_dir() {
        Some(p)
    } else {
        eprintln!("skipped: ../shared/data is not here (third-party test material)");
        None
    }
}

fn hunt(args: &[&str], json: &Path) -> (i32, String, String, serde_json::Value) {
    let mut all = vec!["hunt", "--json", json.to_str().unwrap()];
    all.extend_from_slice(args);
    let (code, out, err) = run(env!("CARGO_BIN_EXE_levee"), &all);
    let v = std::fs::read_to_string(json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (code, out, err, v)
}

/// The findings, one line each, in a stable order.
fn digest(v: &serde_json::Value) -> String {
    let mut out = String::new();
    for f in v["findings"].as_array().unwrap() {
        let lines: Vec<String> = f["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["line"].to_string())
            .collect();
        out.push_str(&format!(
            "{} | {} | {} | hits {} | clients {} | {}..{} | samples at lines {} | author: {}\n",
            f["level"].as_str().unwrap(),
            f["rule_id"].as_str().unwrap(),
            f["title"].as_str().unwrap(),
            f["count"],
            f["clients"],
            f["first_ms"],
            f["last_ms"],
            lines.join(","),
            f["author"].as_str().unwrap(),
        ));
    }
    out
}

#[test]
fn every_sigmahq_rule_loads_and_the_apache_log_hits_match_the_golden_file() {
    let Some(data) = shared() else { return };
    let dir = scratch("hunt-golden");
    let json = dir.join("out.json");
    let sigma = data.join("sigma");
    let log = data.join("logs/elastic-apache/apache_logs");
    let (code, out, err, v) = hunt(
        &["--sigma", sigma.to_str().unwrap(), log.to_str().unwrap()],
        &json,
    );
    assert_eq!(code, 1, "findings make the exit status 1: {err}");
    // Every rule loads: 142 for web servers and proxies, 3 for other logs (named).
    assert_eq!(
        v["rules_failed"].as_array().unwrap().len(),
        0,
        "{}",
        v["rules_failed"]
    );
    assert_eq!(v["rules_loaded"], 142);
    assert_eq!(v["rules_not_web"].as_array().unwrap().len(), 3);
    // The one truncated line of the real log is reported with its place.
    assert_eq!(v["malformed"], 1);
    assert_eq!(v["malformed_lines"][0]["line"], 8899);
    assert!(
        out.contains("apache_logs:8899: unterminated user agent"),
        "{out}"
    );
    assert!(out.contains("10000 lines, 9999 records"), "{out}");
    // Every finding names the rule's author (Detection Rule License).
    for f in v["findings"].as_array().unwrap() {
        assert!(!f["author"].as_str().unwrap().is_empty(), "{f}");
    }
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/hunt-apache.txt");
    let got = digest(&v);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_default();
    let want: String = want
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(
        got, want,
        "hunt output changed; review and UPDATE_GOLDEN=1 if right"
    );
}

#[test]
fn rotated_gzip_logs_malformed_lines_time_window_and_exit_status() {
    let dir = scratch("hunt-inputs");
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        "title: Env file probe\nid: 11111111-2222-3333-4444-555555555555\nauthor: Levee tests\nlevel: medium\nlogsource: {category: webserver}\ndetection:\n  sel:\n    cs-uri-stem|endswith: '/.env'\n  condition: sel\n",
    )
    .unwrap();
    let line = |t: &str, p: &str| {
        format!("203.0.113.9 - - [{t} +0000] \"GET {p} HTTP/1.1\" 404 12 \"-\" \"curl/8\"\n")
    };
    std::fs::write(
        logs.join("access.log"),
        line("17/May/2026:10:00:00", "/.env")
            + "garbage that is not a log line\n"
            + &line("18/May/2026:10:00:00", "/app/.env"),
    )
    .unwrap();
    let old = logs.join("access.log.1");
    std::fs::write(
        &old,
        line("16/May/2026:10:00:00", "/.env") + "{\"ts_ms\": \"x\"}\n",
    )
    .unwrap();
    let (c, _, e) = run("gzip", &[old.to_str().unwrap()]);
    assert_eq!(c, 0, "{e}");
    let json = dir.join("o.json");
    let (code, out, _, v) = hunt(
        &["--sigma", rules.to_str().unwrap(), logs.to_str().unwrap()],
        &json,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(v["findings"][0]["count"], 3, "{out}");
    assert_eq!(v["findings"][0]["author"], "Levee tests");
    assert_eq!(v["malformed"], 2, "{out}");
    let bad: Vec<String> = v["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                Path::new(m["file"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_str()
                    .unwrap(),
                m["line"]
            )
        })
        .collect();
    assert_eq!(bad, vec!["access.log:2", "access.log.1.gz:2"]);
    // A time window keeps only the 17th.
    let (code, out, _, v) = hunt(
        &[
            "--sigma",
            rules.to_str().unwrap(),
            "--from",
            "2026-05-17",
            "--to",
            "2026-05-18",
            logs.to_str().unwrap(),
        ],
        &json,
    );
    assert_eq!(code, 1, "{out}");
    assert_eq!(v["findings"][0]["count"], 1);
    // --fail-on above the findings' level: exit 0; missing input: exit 2; bad time: exit 2.
    let (code, _, _, _) = hunt(
        &[
            "--sigma",
            rules.to_str().unwrap(),
            "--fail-on",
            "high",
            logs.to_str().unwrap(),
        ],
        &json,
    );
    assert_eq!(code, 0);
    let (code, _, err, _) = hunt(
        &["--sigma", rules.to_str().unwrap(), "/nonexistent/log"],
        &json,
    );
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/log"), "{err}");
    let (code, _, err, _) = hunt(
        &[
            "--sigma",
            rules.to_str().unwrap(),
            "--from",
            "yesterday",
            logs.to_str().unwrap(),
        ],
        &json,
    );
    assert_eq!(code, 2);
    assert!(err.contains("is not a time"), "{err}");
}

#[test]
fn correlation_rules_group_and_window_and_suppress_their_base_rules() {
    let dir = scratch("hunt-correlation");
    let rules = dir.join("rules.yml");
    std::fs::write(
        &rules,
        r#"title: Not found
name: not_found
id: 0f0f0f0f-0000-0000-0000-000000000001
author: Levee tests
level: low
logsource: {category: webserver}
detection:
  sel:
    sc-status: 404
  condition: sel
---
title: Path probing from one client
id: 0f0f0f0f-0000-0000-0000-000000000002
author: Levee tests
level: high
correlation:
  type: value_count
  rules: [not_found]
  group-by: [c-ip]
  timespan: 1m
  condition:
    gte: 5
    field: cs-uri-stem
"#,
    )
    .unwrap();
    let mut log = String::new();
    // 203.0.113.9 probes six distinct paths within 30 s; 198.51.100.7 hits the same one six times.
    for (i, p) in [
        "/.env",
        "/.git/config",
        "/wp-login.php",
        "/admin",
        "/backup.zip",
        "/phpinfo.php",
    ]
    .iter()
    .enumerate()
    {
        log.push_str(&format!(
            "203.0.113.9 - - [17/May/2026:10:00:{:02} +0000] \"GET {p} HTTP/1.1\" 404 0 \"-\" \"x\"\n",
            i * 5
        ));
        log.push_str(&format!(
            "198.51.100.7 - - [17/May/2026:10:00:{:02} +0000] \"GET /old HTTP/1.1\" 404 0 \"-\" \"y\"\n",
            i * 5
        ));
    }
    let file = dir.join("access.log");
    std::fs::write(&file, log).unwrap();
    let json = dir.join("o.json");
    let (code, out, err, v) = hunt(
        &[
            "--no-bundled-rules",
            "--sigma",
            rules.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        &json,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(v["correlations_loaded"], 1);
    let c = &v["correlations"][0];
    assert_eq!(c["title"], "Path probing from one client");
    assert_eq!(c["author"], "Levee tests");
    assert_eq!(c["hits"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(c["hits"][0]["group"][0], "203.0.113.9");
    assert_eq!(c["hits"][0]["count"], 5);
    // The base rule only feeds the correlation (generate: false).
    assert_eq!(v["findings"].as_array().unwrap().len(), 0);
    assert!(out.contains("Path probing from one client"), "{out}");
    // A correlation naming a rule that is not there is reported, not ignored.
    std::fs::write(
        &rules,
        "title: Lonely\ncorrelation:\n  type: temporal\n  rules: [ghost]\n  timespan: 1m\n",
    )
    .unwrap();
    let (_, out, _, v) = hunt(
        &["--sigma", rules.to_str().unwrap(), file.to_str().unwrap()],
        &json,
    );
    assert!(
        v["rules_failed"][0].as_str().unwrap().contains("ghost"),
        "{out}"
    );
}

#[test]
fn stix_and_misp_feeds_load_with_the_expected_counts_and_match_requests() {
    let Some(data) = shared() else { return };
    let dir = scratch("hunt-ioc");
    let json = dir.join("o.json");
    // A log in which one APT1 network and one MISP domain show up.
    let log = dir.join("access.log");
    std::fs::write(
        &log,
        "223.167.1.2 - - [17/May/2026:10:00:00 +0000] \"GET /export?all=1 HTTP/1.1\" 200 900000 \"-\" \"x\"\n\
         192.0.2.1 - - [17/May/2026:10:00:01 +0000] \"GET / HTTP/1.1\" 200 10 \"-\" \"y\"\n",
    )
    .unwrap();
    let apt1 = data.join("stix/threat-reports/apt1.json");
    let (code, out, err, v) = hunt(
        &["--ioc", apt1.to_str().unwrap(), log.to_str().unwrap()],
        &json,
    );
    assert_eq!(code, 1, "an IoC sighting is a finding: {out}{err}");
    // 12 indicators: 4 networks, 3 domains, 3 MD5s loaded; 2 x509 AND-patterns reported.
    assert_eq!(v["iocs_loaded"], 10, "{}", v["iocs_skipped"]);
    assert_eq!(v["iocs_skipped"].as_array().unwrap().len(), 2);
    assert!(v["iocs_skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("AND"));
    let f = &v["ioc_findings"][0];
    assert_eq!(f["value"], "223.166.0.0/15");
    assert_eq!(f["fields"][0], "client");
    assert_eq!(f["count"], 1);
    assert!(
        f["source"].as_str().unwrap().contains("#indicator--"),
        "{f}"
    );
    // Poison Ivy: 25 indicators with OR patterns, 67 values; one malformed domain reported.
    let pi = data.join("stix/threat-reports/poisonivy.json");
    let (_, _, _, v) = hunt(
        &["--ioc", pi.to_str().unwrap(), log.to_str().unwrap()],
        &json,
    );
    let skipped = v["iocs_skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0]["value"], "domain autuo.xicp.net");
    // 66 values read, of which duplicates (the same C2 addresses in several patterns) count once.
    assert_eq!(v["iocs_read"], 66);
    assert!(v["iocs_loaded"].as_u64().unwrap() < 66 && v["iocs_loaded"].as_u64().unwrap() > 20);
    // Unsupported STIX (MATCHES over e-mail) is reported, not dropped.
    let mail = data.join("stix/malicious-email-indicator-with-attachment.json");
    let (_, _, _, v) = hunt(
        &["--ioc", mail.to_str().unwrap(), log.to_str().unwrap()],
        &json,
    );
    assert_eq!(v["iocs_loaded"], 0);
    assert_eq!(v["iocs_skipped"].as_array().unwrap().len(), 2);
    // MISP: to_ids honoured (83 for detection: 37 SHA-1, 19 domains, 15 file names, 12
    // addresses; 39 not meant for detection).
    let misp = data.join("misp/existing_event.json");
    let (_, _, _, v) = hunt(
        &["--ioc", misp.to_str().unwrap(), log.to_str().unwrap()],
        &json,
    );
    let skipped = v["iocs_skipped"].as_array().unwrap();
    let not_ids = skipped
        .iter()
        .filter(|k| k["reason"].as_str().unwrap().contains("to_ids"))
        .count();
    assert_eq!(not_ids, 39, "{skipped:?}");
    assert_eq!(skipped.len(), not_ids, "every to_ids value is usable");
    assert_eq!(v["iocs_read"], 83);
    assert_eq!(v["iocs_loaded"], 81, "two values appear twice");
    // A plain list and a CSV, with a bad line named by file:line.
    let plain = dir.join("feed.txt");
    std::fs::write(&plain, "# local list\n192.0.2.0/24\n10.0.0.0/40\n").unwrap();
    let (_, _, _, v) = hunt(
        &["--ioc", plain.to_str().unwrap(), log.to_str().unwrap()],
        &json,
    );
    assert_eq!(v["iocs_loaded"], 2, "{v}");
    assert_eq!(v["ioc_findings"][0]["value"], "192.0.2.0/24");
}

#[test]
fn exfiltration_detectors_report_timeline_and_pseudonyms() {
    let dir = scratch("hunt-exfil");
    let mut log = String::new();
    // 203.0.113.5 walks member IDs 1..150 and gets them all (data served), at 03:00 UTC.
    for i in 1..=150 {
        log.push_str(&format!(
            "203.0.113.5 - - [17/May/2026:03:{:02}:{:02} +0000] \"GET /api/members/{i} HTTP/1.1\" 200 700 \"-\" \"python-requests/2.31\"\n",
            i / 60,
            i % 60
        ));
    }
    // 198.51.100.9 exports without ever logging in; 192.0.2.4 logs in first.
    log.push_str("198.51.100.9 - - [17/May/2026:10:00:00 +0000] \"GET /export/members.csv HTTP/1.1\" 200 5000000 \"-\" \"curl/8\"\n");
    log.push_str("192.0.2.4 - - [17/May/2026:10:01:00 +0000] \"POST /login HTTP/1.1\" 302 0 \"-\" \"Firefox\"\n");
    log.push_str("192.0.2.4 - - [17/May/2026:10:02:00 +0000] \"GET /export/members.csv HTTP/1.1\" 200 5000000 \"-\" \"Firefox\"\n");
    let file = dir.join("access.log");
    std::fs::write(&file, log).unwrap();
    let key = dir.join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let (json, report, timeline) = (dir.join("o.json"), dir.join("r.html"), dir.join("t.jsonl"));
    let md = dir.join("r.md");
    let csv = dir.join("t.csv");
    let args = |r: &Path, t: &Path| {
        vec![
            "--ioc".to_string(),
            file.to_str().unwrap().replace("access.log", "none.txt"),
            "--personal".into(),
            "/api/members".into(),
            "--export".into(),
            "/export".into(),
            "--login".into(),
            "/login".into(),
            "--report".into(),
            r.to_str().unwrap().into(),
            "--timeline".into(),
            t.to_str().unwrap().into(),
            "--pseudonymize".into(),
            key.to_str().unwrap().into(),
            file.to_str().unwrap().into(),
        ]
    };
    std::fs::write(dir.join("none.txt"), "# no indicators\n").unwrap();
    let a = args(&report, &timeline);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, err, v) = hunt(&a, &json);
    assert_eq!(code, 1, "{out}{err}");
    let det: Vec<(String, String)> = v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["detector"].as_str().unwrap().to_string(),
                d["client"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let kinds: Vec<&str> = det.iter().map(|d| d.0.as_str()).collect();
    assert!(kinds.contains(&"export_without_login"), "{det:?}");
    assert!(kinds.contains(&"id_enumeration"), "{det:?}");
    assert!(kinds.contains(&"off_hours"), "{det:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "export_without_login")
            .count(),
        1,
        "the logged-in client is fine"
    );
    // Addresses are pseudonyms everywhere.
    let all = std::fs::read_to_string(&json).unwrap()
        + &std::fs::read_to_string(&report).unwrap()
        + &std::fs::read_to_string(&timeline).unwrap()
        + &out;
    for ip in ["203.0.113.5", "198.51.100.9", "192.0.2.4"] {
        assert!(!all.contains(ip), "{ip} leaked");
    }
    assert!(det.iter().all(|d| d.1.starts_with("anon-")), "{det:?}");
    let enumr = &v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["detector"] == "id_enumeration")
        .unwrap()
        .clone();
    assert_eq!(enumr["records_served"], 150);
    assert!(enumr["summary"].as_str().unwrap().contains("data served"));
    // The report states the conclusion; the HTML is self-contained with a chart.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("Possible exfiltration")
            && html.contains("<svg")
            && !html.contains("<script")
    );
    // The timeline is Timesketch JSON lines, in time order; CSV and Markdown on request.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&timeline)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty());
    assert!(lines
        .windows(2)
        .all(|w| w[0]["timestamp"].as_i64() <= w[1]["timestamp"].as_i64()));
    assert!(lines
        .iter()
        .all(|l| l["datetime"].is_string() && l["message"].is_string()));
    let a = args(&md, &csv);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    hunt(&a, &json);
    assert!(std::fs::read_to_string(&md)
        .unwrap()
        .starts_with("# Log review after an attack"));
    assert!(std::fs::read_to_string(&csv)
        .unwrap()
        .starts_with("datetime,source,level"));
    // A clean log gives the regulator's sentence and exit status 0.
    std::fs::write(
        &file,
        "192.0.2.1 - - [17/May/2026:12:00:00 +0000] \"GET / HTTP/1.1\" 200 10 \"-\" \"Firefox\"\n",
    )
    .unwrap();
    let a = args(&md, &csv);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let (code, out, _, _) = hunt(&a, &json);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("No indicator of exfiltration"), "{out}");
}

#[test]
fn route_tags_in_the_edge_config_replace_the_flags() {
    let dir = scratch("hunt-config-tags");
    let mut log = String::new();
    for i in 1..=250 {
        log.push_str(&format!(
            "203.0.113.8 - - [17/May/2026:10:{:02}:{:02} +0000] \"GET /members/{} HTTP/1.1\" 200 900 \"-\" \"python-requests/2.31\"\n",
            i / 60,
            i % 60,
            (i * 7919) % 100_000
        ));
    }
    let file = dir.join("access.log");
    std::fs::write(&file, log).unwrap();
    std::fs::write(dir.join("none.txt"), "# no indicators\n").unwrap();
    let cfg = dir.join("levee.toml");
    std::fs::write(
        &cfg,
        "[[listener]]\naddress = \"127.0.0.1:0\"\n[[site]]\nname = \"party\"\nhosts = [\"party.example\"]\n[[site.origin]]\naddress = \"127.0.0.1:9\"\n[[site.route]]\nname = \"members\"\npaths = [\"/members\"]\npersonal = true\nspecial = [\"political_opinions\"]\n",
    )
    .unwrap();
    let ioc = dir.join("none.txt");
    let kinds = |extra: &[&str]| -> Vec<String> {
        let mut args = vec!["--ioc", ioc.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        let (_, out, err, v) = hunt(&args, &dir.join("o.json"));
        v["detections"]
            .as_array()
            .unwrap_or_else(|| panic!("{out}{err}"))
            .iter()
            .map(|d| d["detector"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(!kinds(&[]).contains(&"personal_data_bulk".to_string()));
    let with = kinds(&["--config", cfg.to_str().unwrap()]);
    assert!(with.contains(&"personal_data_bulk".to_string()), "{with:?}");
}

/// Matching runs on several threads, batch by batch; the findings are the
/// same as on one, byte for byte, on the real log with attacks, an
/// overlong line and binary junk mixed in (each counted as malformed, in
/// bounded memory).
#[test]
fn several_threads_find_exactly_what_one_finds() {
    let Some(data) = shared() else { return };
    let dir = scratch("hunt-threads");
    let real = std::fs::read_to_string(data.join("logs/elastic-apache/apache_logs")).unwrap();
    let mut log = String::new();
    for copy in 0..3 {
        for (i, l) in real.lines().enumerate() {
            log.push_str(l);
            log.push('\n');
            if i % 97 == 0 {
                log.push_str(&format!(
                    "203.0.113.{} - - [17/May/2015:10:{:02}:03 +0000] \"GET /index.php?id=1'%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\" 200 512 \"-\" \"sqlmap/1.7.2#stable (https://sqlmap.org)\"\n",
                    copy * 50 + i % 50,
                    i % 60
                ));
            }
        }
    }
    let mut bytes = log.into_bytes();
    bytes.extend(std::iter::repeat_n(b'A', 2 << 20));
    bytes.push(b'\n');
    bytes.extend((0..4096u32).map(|i| (i * 7919 % 251) as u8));
    bytes.push(b'\n');
    let path = dir.join("access.log");
    std::fs::write(&path, &bytes).unwrap();
    let sigma = data.join("sigma");
    let mut outs = Vec::new();
    for t in ["1", "2", "3"] {
        let json = dir.join(format!("t{t}.json"));
        let (_, _, err, v) = hunt(
            &[
                "--threads",
                t,
                "--sigma",
                sigma.to_str().unwrap(),
                path.to_str().unwrap(),
            ],
            &json,
        );
        assert!(v.is_object(), "no report with --threads {t}: {err}");
        outs.push((t, std::fs::read_to_string(&json).unwrap(), v));
    }
    let v = &outs[0].2;
    assert!(v["records"].as_u64().unwrap() > 30_000, "{}", v["records"]);
    let malformed = v["malformed_lines"].as_array().unwrap();
    assert!(
        malformed
            .iter()
            .any(|m| m["reason"] == "line longer than 1 MiB"),
        "{malformed:?}"
    );
    assert!(
        v["findings"].as_array().unwrap().len() >= 3,
        "the injected attacks are found"
    );
    for (t, text, _) in &outs[1..] {
        assert!(*text == outs[0].1, "--threads {t} differs from --threads 1");
    }
    // The built-in tool list names sqlmap (its own default User-Agent), and
    // can be switched off.
    let named = |v: &serde_json::Value| {
        v["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["detector"] == "known_tool")
            .map(|d| d["summary"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let tools = named(v);
    assert_eq!(tools.len(), 150, "each injecting client once");
    assert!(
        tools
            .iter()
            .all(|t| t.contains("sqlmap") && t.contains("settings.py")),
        "{tools:?}"
    );
    let json = dir.join("nobuiltin.json");
    let (_, _, _, off) = hunt(
        &[
            "--no-builtin",
            "--sigma",
            sigma.to_str().unwrap(),
            path.to_str().unwrap(),
        ],
        &json,
    );
    assert!(named(&off).is_empty());
}

/// A gigabyte of log (the real Apache log 430 times over, copies from 20
/// sets of clients, with attacks and a bulk download mixed in) gives
/// byte-identical findings on one thread and on two, in bounded memory:
/// what a hunt keeps grows with distinct clients (capped at
/// `MAX_CLIENTS`), not with the log's size.
#[test]
fn a_gigabyte_log_gives_the_same_findings_on_one_thread_and_two() {
    use std::io::Write as _;
    let Some(data) = shared() else { return };
    let dir = scratch("hunt-gigabyte");
    let real = std::fs::read_to_string(data.join("logs/elastic-apache/apache_logs")).unwrap();
    let path = dir.join("access.log");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path).unwrap());
    let mut written = 0usize;
    let mut copy = 0u32;
    while written < 1_000_000_000 {
        for (i, l) in real.lines().enumerate() {
            // Each copy's clients are others: a different first octet.
            let rest = l.split_once('.').map_or(l, |(_, r)| r);
            let line = format!("{}.{rest}\n", 11 + copy % 20);
            written += line.len();
            w.write_all(line.as_bytes()).unwrap();
            if i % 499 == 0 {
                let a = format!(
                    "203.0.{}.{} - - [18/May/2015:{:02}:10:03 +0000] \"GET /index.php?id=1'%20UNION%20SELECT%20password%20FROM%20users-- HTTP/1.1\" 200 512 \"-\" \"sqlmap/1.7.2#stable (https://sqlmap.org)\"\n",
                    copy % 10,
                    i % 250,
                    i % 24
                );
                written += a.len();
                w.write_all(a.as_bytes()).unwrap();
            }
        }
        let b = clf(
            "198.51.100.23",
            &format!("19/May/2015:04:{:02}:00", copy % 60),
            &format!("/site/backups/db-{copy}.zip"),
            26_214_400,
        );
        written += b.len();
        w.write_all(b.as_bytes()).unwrap();
        copy += 1;
    }
    w.flush().unwrap();
    drop(w);
    assert!(std::fs::metadata(&path).unwrap().len() >= 1_000_000_000);
    let mut outs = Vec::new();
    for t in ["1", "2"] {
        let json = dir.join(format!("t{t}.json"));
        let mem = dir.join(format!("t{t}.mem"));
        let out = std::process::Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o", mem.to_str().unwrap()])
            .arg(env!("CARGO_BIN_EXE_levee"))
            .args(["hunt", "--threads", t, "--json", json.to_str().unwrap()])
            .arg(&path)
            .output()
            .expect("/usr/bin/time (Debian package time) runs levee hunt");
        let text = std::fs::read_to_string(&json).unwrap_or_else(|_| {
            panic!(
                "no JSON with --threads {t}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let kib: u64 = std::fs::read_to_string(&mem)
            .unwrap()
            .trim()
            .lines()
            .last()
            .unwrap()
            .parse()
            .unwrap();
        eprintln!("--threads {t}: peak {} MiB", kib / 1024);
        assert!(
            kib < 512 * 1024,
            "--threads {t} peaked at {kib} KiB on 1 GB"
        );
        outs.push(text);
    }
    let _ = std::fs::remove_file(&path);
    let v: serde_json::Value = serde_json::from_str(&outs[0]).unwrap();
    assert!(
        v["records"].as_u64().unwrap() > 4_000_000,
        "{}",
        v["records"]
    );
    assert!(!v["findings"].as_array().unwrap().is_empty());
    assert!(
        v["detections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["detector"] == "bulk_download" && d["client"] == "198.51.100.23"),
        "the bulk download is found"
    );
    assert!(
        outs[1] == outs[0],
        "--threads 2 differs from --threads 1 on 1 GB"
    );
}

/// `levee hunt LOG` runs the bundled SigmaHQ rules and names them (snapshot,
/// licence, each finding's author and the rule's address); `--sigma` with
/// copies of the same rules replaces them instead of counting them twice;
/// `--no-bundled-rules` leaves them out; `--rules-licence` prints the DRL.
#[test]
fn bundled_rules_run_by_default_and_given_copies_replace_them() {
    let Some(data) = shared() else { return };
    let dir = scratch("hunt-bundle");
    let snap = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../levee-hunt/rules/sigmahq/SNAPSHOT"),
    )
    .unwrap();
    let field = |k: &str| {
        snap.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap()
            .trim()
            .to_string()
    };
    let (commit, date) = (field("commit "), field("date "));
    let log = data.join("logs/elastic-apache/apache_logs");
    let log = log.to_str().unwrap();
    let (code, out, err, v) = hunt(&[log], &dir.join("default.json"));
    assert_eq!(code, 1, "findings: {out}{err}");
    assert!(
        out.contains(&format!("bundled from SigmaHQ's snapshot of {date}")),
        "{out}"
    );
    assert!(
        v["rules_loaded"].as_u64().unwrap() > 130,
        "{}",
        v["rules_loaded"]
    );
    assert_eq!(v["rules_bundle"]["date"].as_str(), Some(date.as_str()));
    assert_eq!(
        v["rules_bundle"]["licence"],
        "Detection Rule License (DRL) 1.1"
    );
    let findings = v["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for f in findings {
        let file = f["rule_file"].as_str().unwrap_or("");
        assert!(
            file.starts_with(&format!(
                "https://github.com/SigmaHQ/sigma/blob/{commit}/rules"
            )),
            "{f}"
        );
        assert!(!f["author"].as_str().unwrap_or("").is_empty(), "{f}");
    }
    // The test material's copies of the same rules replace the bundled ones.
    let sigma = data.join("sigma");
    let (_, _, err, w) = hunt(
        &["--sigma", sigma.to_str().unwrap(), log],
        &dir.join("given.json"),
    );
    assert!(err.contains("and those of --sigma"), "{err}");
    assert!(
        w["rules_replaced"].as_u64().unwrap() > 130,
        "{}",
        w["rules_replaced"]
    );
    // Not counted twice (the test material holds a rule or two more).
    let (given, bundled) = (
        w["rules_loaded"].as_u64().unwrap(),
        v["rules_loaded"].as_u64().unwrap(),
    );
    assert!(
        given >= bundled && given < bundled + 10,
        "{given} vs {bundled}"
    );
    let titles: Vec<&str> = w["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["title"].as_str().unwrap())
        .collect();
    let mut distinct = titles.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), titles.len(), "{titles:?}");
    // Left out.
    let (code, _, err, n) = hunt(&["--no-bundled-rules", log], &dir.join("none.json"));
    assert!(err.contains("no Sigma rules"), "{err}");
    assert_eq!(n["rules_loaded"], 0);
    assert!(n["findings"].as_array().unwrap().is_empty());
    assert!(n["rules_bundle"].is_null());
    assert!(code == 0 || code == 1);
    let (code, out, _) = run(env!("CARGO_BIN_EXE_levee"), &["hunt", "--rules-licence"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("# Detection Rule License (DRL) 1.1"),
        "{out}"
    );
    let (_, help, _) = run(env!("CARGO_BIN_EXE_levee"), &["hunt", "--help"]);
    assert!(help.contains(&format!("snapshot of {date}")), "{help}");
}

/// A log line in the Apache log's format.
fn clf(ip: &str, time: &str, path: &str, bytes: u64) -> String {
    format!("{ip} - - [{time} +0000] \"GET {path} HTTP/1.1\" 200 {bytes} \"-\" \"Mozilla/5.0 (X11; Linux x86_64) Firefox/115.0\"\n")
}

/// Exfiltration found by `levee hunt LOG` alone: the routes are
/// inferred from the log, and clients are judged against the whole period
/// (here, at night, with nobody else about).
#[test]
fn exfiltration_is_found_without_route_flags() {
    let Some(data) = shared() else { return };
    let dir = scratch("hunt-infer");
    let real = std::fs::read_to_string(data.join("logs/elastic-apache/apache_logs")).unwrap();
    let run_on = |name: &str, extra: &str| {
        let path = dir.join(format!("{name}.log"));
        std::fs::write(&path, format!("{real}{extra}")).unwrap();
        let json = dir.join(format!("{name}.json"));
        let report = dir.join(format!("{name}.md"));
        // No rules, no feeds, no route: the log alone (and where to write).
        let (_, out, err, v) = hunt(
            &["--report", report.to_str().unwrap(), path.to_str().unwrap()],
            &json,
        );
        assert!(v.is_object(), "no report: {out}{err}");
        assert!(
            err.contains("the bundled rules (")
                && err.contains("the exfiltration and abuse detectors"),
            "{err}"
        );
        (v, std::fs::read_to_string(&report).unwrap_or_default())
    };
    let high_exfil = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["detections"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                matches!(d["level"].as_str(), Some("high" | "critical"))
                    && matches!(
                        d["detector"].as_str(),
                        Some(
                            "bulk_download"
                                | "personal_data_bulk"
                                | "egress_outlier"
                                | "export_without_login"
                        )
                    )
            })
            .cloned()
            .collect()
    };
    // The real log alone: no high-severity exfiltration finding.
    let (v, _) = run_on("real", "");
    assert_eq!(high_exfil(&v), Vec::<serde_json::Value>::new());
    // ~300 MiB of .zip backups at 04:10, a dozen requests.
    let mut zips = String::new();
    for i in 0..12 {
        zips.push_str(&clf(
            "198.51.100.23",
            &format!("18/May/2015:04:10:{:02}", i * 3),
            &format!("/site/backups/db-2015-05-{:02}.zip", i + 1),
            26_214_400,
        ));
    }
    let (v, report) = run_on("zips", &zips);
    let f = high_exfil(&v);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0]["detector"], "bulk_download");
    assert_eq!(f[0]["client"], "198.51.100.23");
    assert_eq!(f[0]["bytes_served"], 12 * 26_214_400u64);
    let summary = f[0]["summary"].as_str().unwrap();
    assert!(
        summary.contains("inferred") && summary.contains("/site/backups/*.zip"),
        "{summary}"
    );
    // The report's conclusion counts what the client took.
    let conclusion = report
        .lines()
        .find(|l| l.contains("MiB served"))
        .unwrap_or_else(|| panic!("no conclusion in the report: {report}"));
    assert!(conclusion.contains("300 MiB served"), "{conclusion}");
    // Thousands of small member records over several hours.
    let mut members = String::new();
    for i in 0..3000u32 {
        members.push_str(&clf(
            "198.51.100.24",
            &format!(
                "18/May/2015:{:02}:{:02}:{:02}",
                1 + i / 1000,
                (i / 17) % 60,
                i % 60
            ),
            &format!("/api/members/{}", (i * 7919) % 100_000),
            900,
        ));
    }
    let (v, _) = run_on("members", &members);
    let f = high_exfil(&v);
    assert!(
        f.iter().any(|d| d["detector"] == "personal_data_bulk"
            && d["client"] == "198.51.100.24"
            && d["summary"].as_str().unwrap().contains("/api/members/{id}")),
        "{f:?}"
    );
    // One huge file.
    let (v, _) = run_on(
        "huge",
        &clf(
            "198.51.100.25",
            "18/May/2015:04:12:00",
            "/files/disk-image.iso",
            2_147_483_648,
        ),
    );
    let f = high_exfil(&v);
    assert!(
        f.iter()
            .any(|d| d["detector"] == "bulk_download" && d["client"] == "198.51.100.25"),
        "{f:?}"
    );
}

/// A gzip bomb (a tiny file that expands without bound) is read up to 200
/// times its size (at least 256 MiB), then named as malformed; the hunt
/// goes on with the next file, in bounded memory.
#[test]
fn a_gzip_bomb_is_stopped_and_named() {
    let Some(data) = shared() else { return };
    let dir = scratch("hunt-bomb");
    let bomb = dir.join("access.log.1.gz");
    let (code, _, err) = run(
        "sh",
        // 100 gzip members of 10 MB of zeros each: 1 GB from about 1 MB.
        &[
            "-c",
            &format!(
                "head -c 10000000 /dev/zero | gzip -9 > {0}.m && for i in $(seq 100); do cat {0}.m; done > {0} && rm {0}.m",
                bomb.display()
            ),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let size = std::fs::metadata(&bomb).unwrap().len();
    assert!(size < 2_000_000, "{size} bytes");
    std::fs::copy(
        data.join("logs/elastic-apache/apache_logs"),
        dir.join("access.log"),
    )
    .unwrap();
    let json = dir.join("bomb.json");
    let (_, out, err, v) = hunt(&[dir.to_str().unwrap()], &json);
    assert!(v.is_object(), "{out}{err}");
    let m = v["malformed_lines"].as_array().unwrap();
    assert!(
        m.iter().any(
            |x| x["reason"].as_str().unwrap().contains("decompression bomb")
                && x["file"].as_str().unwrap().ends_with("access.log.1.gz")
        ),
        "{m:?}"
    );
    // The real log in the same directory is still read.
    assert!(v["records"].as_u64().unwrap() >= 9_000, "{}", v["records"]);
}
