//! The four renderings of one record, against golden files.

use levee_report::{Addresses, Input, RouteTag};
use std::path::{Path, PathBuf};

/// 2026-12-02T09:00:00Z: the report is written the morning after.
pub(crate) const NOW_MS: u64 = 1_796_202_000_000;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

pub(crate) fn input(file: &str, hunt: bool, raw: bool) -> Input {
    let text = std::fs::read_to_string(dir().join("fixtures").join(file)).unwrap();
    let hunt = hunt.then(|| {
        serde_json::from_str(&std::fs::read_to_string(dir().join("fixtures/hunt.json")).unwrap())
            .unwrap()
    });
    Input {
        incident: levee_incident::read_any(file, &text),
        incident_file: file.into(),
        hunt_file: hunt.as_ref().map(|_| "hunt.json".to_string()),
        hunt,
        routes: vec![RouteTag {
            site: "test".into(),
            name: "members".into(),
            paths: vec!["/members".into()],
            personal: true,
            special: vec!["political_opinions".into()],
            export: true,
        }],
        ledger: None,
        addresses: if raw {
            Addresses::Raw
        } else {
            Addresses::Pseudonymised {
                key: levee_privacy::Pseudonymizer::new(b"a fixed key for the golden files", false),
                same_as_hunt: true,
            }
        },
        organisation: Some("Example Party".into()),
        now_ms: NOW_MS,
    }
}

pub(crate) fn check(name: &str, got: &str) {
    let path = dir().join("golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "{} is missing: run UPDATE_GOLDEN=1 cargo test -p levee-report",
            path.display()
        )
    });
    if want != got {
        let line = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .map_or(want.lines().count().min(got.lines().count()) + 1, |i| i + 1);
        panic!(
            "{name} differs from its golden file at line {line}:\n want: {}\n  got: {}\n(UPDATE_GOLDEN=1 rewrites it after a deliberate change)",
            want.lines().nth(line - 1).unwrap_or(""),
            got.lines().nth(line - 1).unwrap_or("")
        );
    }
}

#[test]
fn a_drill_floods_record_renders_as_markdown_json_stix_and_html() {
    let r = levee_report::build(input("flood-blocked.jsonl", true, false));
    check("flood.md", &levee_report::markdown(&r));
    check(
        "flood.json",
        &(serde_json::to_string_pretty(&r).unwrap() + "\n"),
    );
    check(
        "flood.stix.json",
        &(serde_json::to_string_pretty(&levee_report::stix::bundle(&r)).unwrap() + "\n"),
    );
    let html = levee_report::html(&r);
    // Self-contained and printable: no script, nothing fetched.
    assert!(!html.contains("<script"));
    assert!(!html.contains("src=") && !html.contains("href="));
    assert!(html.contains("@media print"));
    assert_eq!(html.matches("<svg").count(), 2);
    assert!(html.contains("<polygon"));
    // The damaged line is named and the rest kept.
    assert_eq!(r.problems.len(), 1);
    assert!(
        r.problems[0].starts_with("flood-blocked.jsonl:10: "),
        "{:?}",
        r.problems
    );
    assert_eq!(r.peaks.requests, 2398);
}

#[test]
fn pseudonymised_reports_name_no_address_anywhere_and_raw_ones_do() {
    let r = levee_report::build(input("flood-blocked.jsonl", true, false));
    let all = [
        levee_report::markdown(&r),
        levee_report::html(&r),
        serde_json::to_string(&r).unwrap(),
        levee_report::stix::bundle(&r).to_string(),
    ];
    for text in &all {
        for a in ["127.20.0.0", "203.0.113.9", "127.250.0"] {
            assert!(!text.contains(a), "{a} in a pseudonymised report");
        }
    }
    let key = levee_privacy::Pseudonymizer::new(b"a fixed key for the golden files", false);
    // The same pseudonym as `levee hunt --pseudonymize` with that key.
    assert!(all[0].contains(&key.addr("203.0.113.9")));
    let raw = levee_report::build(input("flood-blocked.jsonl", true, true));
    let md = levee_report::markdown(&raw);
    assert!(md.contains("127.20.0.0/24") && md.contains("203.0.113.9"));
    let stix = levee_report::stix::bundle(&raw).to_string();
    assert!(stix.contains("[ipv4-addr:value = '127.20.0.0/24']"));
}
