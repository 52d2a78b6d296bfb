//! The personal-data part never claims what was not measured.

use crate::golden::input;

#[test]
fn without_hunt_findings_personal_data_is_not_assessed() {
    let r = levee_report::build(input("flood.jsonl", false, false));
    let p = &r.personal_data;
    assert_eq!(p.verdict, "not assessed");
    assert!(p
        .conclusion
        .contains("does not say whether personal data was affected"));
    let md = levee_report::markdown(&r);
    assert!(!md.contains("No exfiltration found"));
    let f = r
        .ico_form
        .iter()
        .find(|f| f.question == "Number of personal data records concerned")
        .unwrap();
    assert_eq!(f.status, "to complete");
}

#[test]
fn hunts_bulk_download_from_a_tagged_route_is_special_category_data_with_its_clock() {
    let r = levee_report::build(input("flood-blocked.jsonl", true, false));
    let p = &r.personal_data;
    assert_eq!(p.verdict, "found");
    assert_eq!(p.records_estimate, 1200);
    assert_eq!(p.special_categories, vec!["political_opinions"]);
    assert!(p.notify.contains("high risk"));
    // Detected at the incident's opening; 72 hours from then.
    assert_eq!(p.deadline_ms - p.detected_ms, 72 * 3_600_000);
    assert!((p.hours_left - (p.deadline_ms - crate::golden::NOW_MS) as f64 / 3.6e6).abs() < 1e-9);
    // Probing is not exfiltration.
    assert_eq!(p.exfiltration.len(), 1);
    assert_eq!(p.exfiltration[0].routes, vec!["/members/export.csv"]);
    assert_eq!(p.compromise.len(), 2);
}

#[test]
fn no_exfiltration_found_says_which_logs_and_rules_were_checked() {
    let mut i = input("flood.jsonl", true, false);
    if let Some(h) = i.hunt.as_mut() {
        h.detections.clear();
        h.ioc_findings.clear();
    }
    let r = levee_report::build(i);
    let p = &r.personal_data;
    assert_eq!(p.verdict, "none found");
    assert!(p.conclusion.contains("2399 requests"));
    assert!(p.conclusion.contains("129 rules and 40 indicators"));
    assert!(p.checked[0].contains("/var/log/levee/access.log"));
}

#[test]
fn the_ledger_is_cited_and_a_broken_chain_said() {
    use levee_privacy::ledger::{Entry, GENESIS};
    let opened = 1_796_161_010_000;
    let a = Entry::chained(
        GENESIS,
        opened - 10,
        "key_created",
        "k1",
        serde_json::json!({}),
    );
    let b = Entry::chained(
        &a.hash,
        opened + 5000,
        "hold",
        "test-1796161011",
        serde_json::json!({"until_ms": opened + 86_400_000, "reason": "CERT case 42"}),
    );
    let c = Entry::chained(
        &b.hash,
        opened + 9000,
        "file_deleted",
        "access.log.3",
        serde_json::json!({"first_record_ms": 1, "last_record_ms": 2}),
    );
    let text = [a.line(), b.line(), c.line()].join("\n");
    let l = levee_report::cite_ledger(
        "ledger.jsonl",
        &text,
        "test-1796161011",
        opened,
        Some(opened + 10_000),
    );
    assert_eq!(l.verified.as_deref(), Ok(c.hash.as_str()));
    assert_eq!(l.entries, 3);
    assert_eq!(l.cited.len(), 1);
    assert_eq!((l.cited[0].line, l.cited[0].action.as_str()), (2, "hold"));
    let broken = [a.line(), c.line()].join("\n");
    let l = levee_report::cite_ledger("ledger.jsonl", &broken, "x", opened, None);
    assert!(l.verified.unwrap_err().contains("line 2"));
    let mut i = input("flood.jsonl", false, false);
    i.ledger = Some(levee_report::cite_ledger(
        "ledger.jsonl",
        &text,
        "test-1796161011",
        opened,
        Some(opened + 10_000),
    ));
    let md = levee_report::markdown(&levee_report::build(i));
    assert!(
        md.contains("chain verified")
            && md.contains("line 2:")
            && md.contains("hold test-1796161011")
    );
}
