//! Switched on in the middle of an attack: an edge with no learned baseline
//! (the default 10 s of learning never had a calm moment) still derives
//! rules from the flood's own population within two seconds, while a crowd
//! of real browsers arriving at a freshly started edge gets no rule and no
//! challenge.

use super::adaptive_defense::{events, run_drill};
use super::*;

/// The defaults (10 s of learning, 100 ms ticks); only the drill's opt-in.
const FRESH: &str = r#"
[drill]
token = "t0k3n"
"#;

/// A drill with no warm-up: the attack meets an edge that never learned.
fn drill(e: &Edge, o: &Origin, scenario: &str, secs: &str) -> serde_json::Value {
    run_drill(e, o, scenario, "0", secs)
}

#[test]
fn a_mirai_like_flood_on_a_fresh_edge_gets_rules_within_two_seconds() {
    let o = Origin::start();
    let e = Edge::start("cold-http-flood", &config(o.addr, "", FRESH));
    let s = drill(&e, &o, "http-flood", "4");
    let ttm = s["time_to_mitigate_s"].as_u64().expect("never mitigated");
    assert!(ttm <= 2, "time to mitigate {ttm} s: {s}");
    let after = s["attack_passed_ratio_after_mitigation"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(after <= 0.05, "{s}");
    assert!(s["legit_success"].as_f64().unwrap() >= 0.99, "{s}");
    let ev = events(&e);
    let rule = ev
        .iter()
        .find(|v| v["event"] == "rule_added")
        .unwrap_or_else(|| panic!("no rule: {ev:?}"));
    // Judged against the flood's own clean population, not a baseline.
    assert_eq!(rule["rule"]["evidence"]["basis"], "population", "{rule}");
    let value = rule["rule"]["value"].as_str().unwrap();
    assert!(
        !value.contains("Chrome/126"),
        "a rule on the real browsers: {value}"
    );
    let why = ev
        .iter()
        .find(|v| v["event"] == "mode" && v["to"] == "under_attack")
        .unwrap_or_else(|| panic!("never under attack: {ev:?}"));
    assert!(
        why["why"].as_str().unwrap().contains("no baseline yet"),
        "{why}"
    );
}

#[test]
fn a_flash_crowd_on_a_fresh_edge_gets_no_rule_and_no_challenge() {
    let o = Origin::start();
    let e = Edge::start("cold-flash-crowd", &config(o.addr, "", FRESH));
    let s = drill(&e, &o, "flash-crowd", "4");
    assert_eq!(s["legit_success"].as_f64().unwrap(), 1.0, "{s}");
    assert_eq!(s["legit_challenged"], 0, "{s}");
    assert_eq!(s["legit_blocked"], 0, "{s}");
    let ev = events(&e);
    assert!(
        !ev.iter().any(|v| v["event"] == "rule_added"),
        "a rule against real visitors: {ev:?}"
    );
}
