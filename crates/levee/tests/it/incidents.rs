//! Incident records: a drill flood opens an incident, the record keeps
//! its per-second series, peaks, vectors and actions, it survives a
//! restart of the edge in the middle, and it closes once the site is calm;
//! a damaged record is read with its bad lines named by file and line.

use super::adaptive_defense::FAST;
use super::*;

fn incidents_config(o: &Origin, dir: &std::path::Path) -> String {
    config(
        o.addr,
        "",
        &format!(
            "{FAST}\n[incidents]\ndir = \"{}\"\ncooldown = \"2s\"\n",
            dir.display()
        ),
    )
}

fn get_json(e: &Edge, path: &str) -> serde_json::Value {
    let (s, body) = http_get(
        e.admin,
        path,
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(s, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A steady drill flood; the drill's own per-second totals, as the edge would count them.
fn flood(e: &Edge, o: &Origin, rate: &str, secs: &str) -> Vec<u64> {
    let json = e.dir.join("flood.json");
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &[
            "drill",
            "--target",
            &e.url("/"),
            "--scenario",
            "http-flood",
            "--warmup",
            "2",
            "--duration",
            secs,
            "--rate",
            rate,
            "--legit",
            "5",
            "--workers",
            "1",
            "--origin",
            &o.addr.to_string(),
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            [
                "attack_sent",
                "legit_ok",
                "legit_failed",
                "legit_shed",
                "legit_blocked",
            ]
            .iter()
            .map(|k| s[*k].as_u64().unwrap_or(0))
            .sum()
        })
        .collect()
}

fn await_closed(e: &Edge, secs: u64) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let l = get_json(e, "/incidents");
        if l["incidents"].as_array().is_some_and(|a| !a.is_empty())
            && l["open"].as_array().is_some_and(|a| a.is_empty())
        {
            return l;
        }
        assert!(Instant::now() < deadline, "no closed incident: {l}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_flood_is_recorded_as_one_incident_with_its_peak_vectors_and_end() {
    let o = Origin::start();
    let dir = scratch("incidents-flood");
    let e = Edge::start("incidents-flood", &incidents_config(&o, &dir));
    let drill = flood(&e, &o, "400", "5");
    let list = await_closed(&e, 20);
    let items = list["incidents"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    let id = items[0]["id"].as_str().unwrap();
    let r = get_json(&e, &format!("/incidents/{id}"));
    assert_eq!(r["site"], "test");
    assert!(r["closed_unix_ms"].as_u64().is_some(), "{r}");
    assert!(r["problems"].as_array().unwrap().is_empty(), "{r}");
    // The peak agrees with what the drill itself sent in its busiest second.
    let peak = r["peak_rps"]["value"].as_f64().unwrap();
    let drill_peak = *drill.iter().max().unwrap() as f64;
    eprintln!(
        "incident peak {peak} req/s, drill's busiest second {drill_peak}; {} s, {} requests",
        r["duration_s"], r["requests"]
    );
    assert!(
        (peak - drill_peak).abs() <= drill_peak * 0.1,
        "incident peak {peak}, drill {drill_peak}: {drill:?}"
    );
    // Vectors with evidence, the mode timeline, the challenge funnel.
    let vectors = r["vectors"].as_array().unwrap();
    assert!(!vectors.is_empty(), "{r}");
    assert!(
        vectors[0]["rule"]["evidence"]["attack_share"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(
        r["modes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["to"] == "under_attack"),
        "{r}"
    );
    assert!(r["funnel"]["challenged"].as_u64().unwrap() > 0, "{r}");
    assert!(r["outcomes"]["origin"].as_u64().unwrap() > 0);
    let series = r["series"].as_array().unwrap();
    assert!(series.len() >= 4, "{r}");
    // Top sources: the flood's prefix is listed; an attacker only if blocked.
    let top = r["top_sources"].as_array().unwrap();
    assert!(!top.is_empty(), "{r}");
    for a in r["attackers"].as_array().unwrap() {
        assert!(a["blocked"].as_u64().unwrap() > 0, "{a}");
    }
    // Without the token there is no record to read.
    assert_eq!(http_get(e.admin, "/incidents", &[]).0, 401);
    assert_eq!(
        http_get(
            e.admin,
            &format!("/incidents/..%2F{id}"),
            &[("Authorization", &format!("Bearer {TOKEN}"))]
        )
        .0,
        404
    );
    assert_eq!(e.metric("levee_incidents_open"), 0.0);
    assert_eq!(e.metric("levee_incident_write_errors_total"), 0.0);
}

#[test]
fn an_incident_survives_a_restart_and_a_damaged_record_keeps_its_good_lines() {
    let o = Origin::start();
    let dir = scratch("incidents-restart");
    let text = incidents_config(&o, &dir);
    let mut e = Edge::start("incidents-restart", &text);
    let (code, _) = admin_post(e.admin, "/mode?site=test&mode=under_attack", Some(TOKEN));
    assert_eq!(code, 200);
    // Some traffic while the incident is open.
    for _ in 0..20 {
        let _ = http_get(e.addr, "/", &[]);
    }
    std::thread::sleep(Duration::from_millis(2500));
    let open = get_json(&e, "/incidents");
    let id = open["open"][0]
        .as_str()
        .unwrap_or_else(|| panic!("nothing open: {open}"))
        .to_string();
    // The edge dies (no graceful shutdown) and comes back on the same directory.
    let _ = e.child.kill();
    let _ = e.child.wait();
    e = Edge::start("incidents-restart-2", &text);
    let again = get_json(&e, "/incidents");
    assert_eq!(
        again["open"][0],
        id.as_str(),
        "the open incident was not resumed: {again}"
    );
    for _ in 0..10 {
        let _ = http_get(e.addr, "/", &[]);
    }
    std::thread::sleep(Duration::from_millis(1500));
    // Calm again: back to automatic, and the incident closes after the cooldown.
    let (code, _) = admin_post(e.admin, "/mode?site=test&mode=auto", Some(TOKEN));
    assert_eq!(code, 200);
    let list = await_closed(&e, 15);
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1, "{list}");
    let r = get_json(&e, &format!("/incidents/{id}"));
    assert!(r["closed_unix_ms"].as_u64().is_some(), "{r}");
    assert_eq!(r["requests"], 30, "{r}");
    assert!(
        r["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["event"] == "incident_opened"),
        "{r}"
    );
    // Damage the file: a broken line in the middle and a truncated last line.
    let path = dir.join(format!("{id}.jsonl"));
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let n = lines.len();
    lines.insert(2, "{\"type\":\"second\",\"t\":12,\"cou".into());
    let last = lines.pop().unwrap();
    lines.push(last[..last.len() / 2].to_string());
    std::fs::write(&path, lines.join("\n")).unwrap();
    let r = get_json(&e, &format!("/incidents/{id}"));
    let problems: Vec<String> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with(&format!("{}:3: ", path.display())),
        "{problems:?}"
    );
    assert!(
        problems[1].starts_with(&format!("{}:{}: ", path.display(), n + 1)),
        "{problems:?}"
    );
    // The rest is kept: the same requests, and now an incident without an end.
    assert_eq!(r["requests"], 30, "{r}");
    assert!(r["closed_unix_ms"].is_null());
}
