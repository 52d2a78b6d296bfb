//! The adaptive defense end to end, driven by real `levee drill` runs: a
//! flood is detected in-line, a signature rule stops it before the origin,
//! legitimate clients keep working, the rule expires and the mode returns to
//! normal; a flash crowd of real visitors is neither blocked nor challenged;
//! operators can pin a mode; repeat offenders are blocked at accept.

use super::*;

/// Fast detection for tests: 100 ms ticks, one second of learning.
pub(crate) const FAST: &str = r#"
[drill]
token = "t0k3n"
[site.defense]
tick = "100ms"
learn = "1s"
baseline_window = "60s"
min_rate = 20.0
cooldown = "1s"
rule_idle = "1s"
"#;

pub(crate) fn events(e: &Edge) -> Vec<serde_json::Value> {
    let (status, body) = http_get(e.admin, "/events", &[]);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["events"].as_array().cloned().unwrap_or_default()
}

fn mode(e: &Edge) -> String {
    let (_, body) = http_get(e.admin, "/status", &[]);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["sites"][0]["defense"]["mode"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

pub(crate) fn run_drill(
    e: &Edge,
    o: &Origin,
    scenario: &str,
    warmup: &str,
    secs: &str,
) -> serde_json::Value {
    let target = e.url("/");
    let origin = o.addr.to_string();
    let (code, s, err) = drill_raw(
        e,
        &[
            "--target",
            &target,
            "--scenario",
            scenario,
            "--warmup",
            warmup,
            "--duration",
            secs,
            "--legit",
            "10",
            "--workers",
            "1",
            "--origin",
            &origin,
        ],
    );
    assert_eq!(code, 0, "{err}");
    s
}

#[test]
fn http_flood_is_detected_mitigated_and_forgotten() {
    let o = Origin::start();
    let e = Edge::start("adaptive-http-flood", &config(o.addr, "", FAST));
    let s = run_drill(&e, &o, "http-flood", "3", "3");
    assert!(s["legit_success"].as_f64().unwrap() >= 0.99, "{s}");
    let ttm = s["time_to_mitigate_s"].as_u64().expect("never mitigated");
    assert!(ttm <= 2, "time to mitigate {ttm} s: {s}");
    let after = s["attack_passed_ratio_after_mitigation"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(after <= 0.01, "{s}");
    // The rule and the mode change are events, with their evidence.
    let ev = events(&e);
    let rule = ev
        .iter()
        .find(|v| v["event"] == "rule_added")
        .unwrap_or_else(|| panic!("no rule: {ev:?}"));
    assert!(rule["rule"]["evidence"]["attack_share"].as_f64().unwrap() > 0.2);
    assert_eq!(rule["rule"]["evidence"]["baseline_share"], 0.0);
    assert!(ev
        .iter()
        .any(|v| v["event"] == "mode" && v["to"] == "under_attack"));
    // The rule never matched a legitimate browser: its value is the bots'.
    let value = rule["rule"]["value"].as_str().unwrap();
    assert!(!value.contains("Chrome/126"), "{value}");
    // Traffic stopped: the rule expires and the mode steps down to normal.
    let deadline = Instant::now() + Duration::from_secs(10);
    while mode(&e) != "normal" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(mode(&e), "normal");
    let ev = events(&e);
    assert!(ev.iter().any(|v| v["event"] == "rule_expired"), "{ev:?}");
    assert!(e.metric("levee_challenges_issued_total") > 0.0);
}

#[test]
fn carpet_bomb_below_every_per_address_limit_is_caught_by_its_signature() {
    let o = Origin::start();
    // Per-address limits that no single bot of the carpet bomb reaches.
    let extra = format!("{FAST}\n[site.rate_limit]\nper_ip = 200\n");
    let e = Edge::start("adaptive-carpet", &config(o.addr, "", &extra));
    let s = run_drill(&e, &o, "carpet-bomb", "3", "4");
    assert!(s["legit_success"].as_f64().unwrap() >= 0.99, "{s}");
    assert!(
        s["time_to_mitigate_s"].as_u64().expect("never mitigated") <= 5,
        "{s}"
    );
    assert_eq!(e.defense("rate_limit_ip"), 0.0, "not a per-address defense");
    assert!(events(&e).iter().any(|v| v["event"] == "rule_added"));
}

#[test]
fn a_flash_crowd_of_real_visitors_is_not_blocked_or_challenged() {
    let o = Origin::start();
    let e = Edge::start("adaptive-flash-crowd", &config(o.addr, "", FAST));
    let s = run_drill(&e, &o, "flash-crowd", "3", "5");
    assert_eq!(s["legit_success"].as_f64().unwrap(), 1.0, "{s}");
    assert_eq!(s["legit_challenged"], 0, "{s}");
    assert_eq!(s["legit_blocked"], 0, "{s}");
    let ev = events(&e);
    assert!(
        !ev.iter().any(|v| v["event"] == "rule_added"),
        "a rule against real visitors: {ev:?}"
    );
}

#[test]
fn operators_pin_a_mode_and_auto_challenges_only_unknown_clients() {
    let o = Origin::start();
    let extra = r#"
[site.challenge]
mode = "auto"
staff_tokens = ["staff-token-1"]
"#;
    let e = Edge::start("adaptive-pin", &config(o.addr, "", extra));
    let html = [("Accept", "text/html")];
    assert_eq!(http_get(e.addr, "/", &html).0, 200);
    // Pinning needs the admin token.
    assert_eq!(
        admin_post(e.admin, "/mode?site=test&mode=under_attack", None).0,
        401
    );
    let (st, body) = admin_post(e.admin, "/mode?site=test&mode=sideways", Some(TOKEN));
    assert_eq!(st, 400);
    assert!(body.contains("normal|elevated|under_attack|auto"), "{body}");
    let (st, _) = admin_post(e.admin, "/mode?site=test&mode=under_attack", Some(TOKEN));
    assert_eq!(st, 200);
    assert_eq!(mode(&e), "under_attack");
    // Under attack with `auto`: an unknown browser gets the challenge, staff do not.
    let (st, body) = http_get(e.addr, "/", &html);
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("levee"), "{body}");
    let staff = [
        ("Accept", "text/html"),
        ("Authorization", "Bearer staff-token-1"),
    ];
    assert_eq!(http_get(e.addr, "/", &staff).0, 200);
    // Back to automatic: the calm site is normal again and nobody is challenged.
    assert_eq!(
        admin_post(e.admin, "/mode?site=test&mode=auto", Some(TOKEN)).0,
        200
    );
    assert_eq!(mode(&e), "normal");
    assert_eq!(http_get(e.addr, "/", &html).0, 200);
    let ev = events(&e);
    assert!(ev
        .iter()
        .any(|v| v["event"] == "mode" && v["why"] == "pinned by an operator"));
}

#[test]
fn repeat_offenders_are_blocked_at_accept_and_the_block_is_published() {
    let o = Origin::start();
    let extra =
        format!("{FAST}rule_action = \"block\"\nauto_block_after = 20\nauto_block_ttl = \"60s\"\n");
    let e = Edge::start("adaptive-auto-block", &config(o.addr, "", &extra));
    let s = run_drill(&e, &o, "http-flood", "3", "3");
    assert!(s["legit_success"].as_f64().unwrap() >= 0.99, "{s}");
    assert!(e.defense("rule_block") > 0.0);
    assert!(e.defense("blocked") > 0.0, "nothing refused at accept");
    let ev = events(&e);
    let block = ev
        .iter()
        .find(|v| v["event"] == "block")
        .unwrap_or_else(|| panic!("{ev:?}"));
    let cidr = block["cidr"].as_str().unwrap();
    assert!(cidr.ends_with("/32"), "{cidr}");
    // The packet filter's feed carries it: in the change stream, and in what
    // the edge hands the XDP filter (with its expiry).
    let (_, body) = http_get(e.admin, "/blocks/changes?since=0", &[]);
    assert!(body.contains(cidr), "{body}");
    let (_, body) = http_get(e.admin, "/blocks", &[]);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let fed = v["packet_filter"]["entries"].as_array().unwrap();
    let entry = fed
        .iter()
        .find(|x| x["cidr"] == cidr)
        .unwrap_or_else(|| panic!("{body}"));
    let left = entry["expires_in_ms"].as_u64().unwrap();
    assert!(left > 0 && left <= 60_000, "{entry}");
}
