//! Incident records: a drill flood opens an incident, the record keeps
//! its per-second series, peaks, vectors and actions, it survives a
//! restart of the edge in the middle, and it closes once the site is calm;
//! a damaged record is read with its bad lines named by file and line.

use super::adaptive_defense::FAST;
use super::*;

pub(super) fn incidents_config(o: &Origin, dir: &std::path::Path) -> String {
    config(
        o.addr,
        "",
        &format!(
            "{FAST}\n[incidents]\ndir = \"{}\"\ncooldown = \"2s\"\n",
            dir.display()
        ),
    )
}

pub(super) fn get_json(e: &Edge, path: &str) -> serde_json::Value {
    let (s, body) = http_get(
        e.admin,
        path,
        &[("Authorization", &format!("Bearer {TOKEN}"))],
    );
    assert_eq!(s, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A steady drill flood; the drill's own per-second totals, as the edge would count them.
pub(super) fn flood(e: &Edge, o: &Origin, rate: &str, secs: &str) -> Vec<u64> {
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

pub(super) fn await_closed(e: &Edge, secs: u64) -> serde_json::Value {
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
    // The peak agrees with what the drill itself sent. Both count per
    // second, on seconds that do not line up: the drill's first attack
    // second counts a burst (562 against 434 after it) that reaches the edge
    // spread over two of its seconds. So the incident's peak is held to the
    // drill's steady count (its median attack second) within 10%, and never
    // above the drill's busiest second by more than 20% (a loaded CI
    // machine saw 561 against a busiest drill second of 505: the two clocks'
    // seconds straddle, and the next second's catch-up burst lands in the
    // edge's; a peak counted twice would be far above that).
    let peak = r["peak_rps"]["value"].as_f64().unwrap();
    let mut attack: Vec<u64> = drill.iter().copied().filter(|&n| n > 100).collect();
    attack.sort_unstable();
    let steady = attack[attack.len() / 2] as f64;
    let busiest = *drill.iter().max().unwrap() as f64;
    eprintln!(
        "incident peak {peak} req/s; drill's steady {steady}, busiest {busiest}; {} s, {} requests",
        r["duration_s"], r["requests"]
    );
    assert!(
        peak >= steady * 0.9 && peak <= busiest * 1.2,
        "incident peak {peak}, drill {drill:?}"
    );
    // Every request the drill sent is in the record (its series starts ten
    // seconds before the opening, so the warm-up is in it too).
    let sent: u64 = drill.iter().sum();
    let recorded = r["requests"].as_u64().unwrap();
    assert!(
        recorded.abs_diff(sent) * 20 <= sent,
        "{recorded} recorded of {sent} sent"
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

/// A closed record, as the edge writes one, closed `days_ago` days ago.
fn old_record(dir: &std::path::Path, id: &str, days_ago: u64) -> PathBuf {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let closed = now - days_ago * 86_400_000;
    let p = dir.join(format!("{id}.jsonl"));
    std::fs::write(
        &p,
        format!(
            "{{\"type\":\"open\",\"id\":\"{id}\",\"site\":\"test\",\"edge\":\"x\",\"opened_unix_ms\":{},\"mode\":\"under_attack\",\"why\":\"\",\"before\":{{\"seconds\":0,\"requests_per_s\":0.0,\"success\":1.0,\"p99_ms\":0.0}}}}\n{{\"type\":\"close\",\"closed_unix_ms\":{closed}}}\n",
            closed - 60_000
        ),
    )
    .unwrap();
    p
}

#[test]
fn old_records_go_after_their_days_in_the_ledger_and_a_hold_keeps_them() {
    let o = Origin::start();
    for held in [false, true] {
        let dir = scratch("incidents-retention");
        let old = old_record(&dir, "test-old", 40);
        let recent = old_record(&dir, "test-recent", 10);
        let text = config(
            o.addr,
            "",
            &format!(
                "\n[incidents]\ndir = \"{}\"\n\n[retention]\nincidents_days = 30\n",
                dir.display()
            ),
        );
        // The edge's own scratch directory holds the access log and its ledger.
        let edge_dir = scratch("incidents-retention-edge");
        let cfg = edge_dir.join("levee.toml");
        std::fs::write(
            &cfg,
            text.replace(
                "ACCESS_LOG",
                &edge_dir.join("access.log").display().to_string(),
            ),
        )
        .unwrap();
        if held {
            let (code, _, err) = run(
                env!("CARGO_BIN_EXE_levee"),
                &[
                    "retention",
                    "hold",
                    "--config",
                    cfg.to_str().unwrap(),
                    "--for",
                    "24h",
                    "--incident",
                    "INC-9",
                    "--reason",
                    "CERT report",
                ],
            );
            assert_eq!(code, 0, "{err}");
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_levee"));
        cmd.arg("serve").arg("--config").arg(&cfg);
        let _e = Edge::spawn_cmd(cmd, edge_dir.clone(), cfg.clone());
        std::thread::sleep(Duration::from_millis(1500));
        assert!(recent.exists(), "a record within its days was deleted");
        let ledger =
            std::fs::read_to_string(edge_dir.join("retention-ledger.jsonl")).unwrap_or_default();
        if held {
            assert!(old.exists(), "deleted under a hold");
            assert!(!ledger.contains("\"file_deleted\""), "{ledger}");
        } else {
            assert!(!old.exists(), "a record past its days was kept");
            let entry = ledger
                .lines()
                .find(|l| l.contains("\"file_deleted\""))
                .unwrap_or_else(|| panic!("{ledger}"));
            assert!(
                entry.contains("\"tier\":\"incidents\"") && entry.contains("test-old"),
                "{entry}"
            );
            let (code, out, err) = run(
                env!("CARGO_BIN_EXE_levee"),
                &["retention", "verify", "--config", cfg.to_str().unwrap()],
            );
            assert_eq!(code, 0, "{out}{err}");
        }
    }
}

/// A webhook receiver: every request's head and body, answered 200 (or never, when `stall`).
/// What a receiver got: (head, body) per request.
type Received = Arc<std::sync::Mutex<Vec<(String, String)>>>;

fn receiver(stall: bool) -> (SocketAddr, Received) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let g = Arc::clone(&got);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().take(50) {
            let Ok(mut s) = s else { continue };
            if stall {
                held.push(s);
                continue;
            }
            s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((h, b)) = text.split_once("\r\n\r\n") {
                    let len: usize = h
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if b.len() >= len || n == 0 {
                        break (h.to_string(), b.to_string());
                    }
                }
                if n == 0 {
                    break (text, String::new());
                }
            };
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            g.lock().unwrap().push((head, body));
        }
    });
    (addr, got)
}

const HOOK_SECRET: &str = "webhook-secret-0123456789abcdef-0123";

#[test]
fn alerts_reach_a_signed_webhook_and_a_command_and_a_dead_webhook_slows_nothing() {
    let o = Origin::start();
    let (hook, got) = receiver(false);
    let dir = scratch("incidents-alerts");
    let out = dir.join("command.out");
    let extra = format!(
        "\n[incidents]\ndir = \"{}\"\ncooldown = \"1s\"\nwebhook = \"http://{hook}/levee\"\nwebhook_secret = \"{HOOK_SECRET}\"\ncommand = [\"sh\", \"-c\", \"cat >> {}; echo >> {}\"]\n",
        dir.display(), out.display(), out.display()
    );
    let e = Edge::start("incidents-alerts", &config(o.addr, "", &extra));
    let pinned = Instant::now();
    assert_eq!(
        admin_post(e.admin, "/mode?site=test&mode=under_attack", Some(TOKEN)).0,
        200
    );
    let wait_for = |kind: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(a) = got
                .lock()
                .unwrap()
                .iter()
                .find(|(_, b)| b.contains(&format!("\"kind\":\"{kind}\"")))
            {
                return a.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {kind} alert: {:?}",
                got.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let (head, body) = wait_for("incident_opened");
    eprintln!(
        "alert received {:?} after the mode change",
        pinned.elapsed()
    );
    assert!(pinned.elapsed() < Duration::from_secs(60));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["site"], "test");
    assert_eq!(v["mode"], "under_attack");
    assert!(v["incident"].as_str().unwrap().starts_with("test-"));
    // The signature: HMAC-SHA-256 over "TIMESTAMP.BODY".
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name}: {head}"))
    };
    let ts = header("X-Levee-Timestamp");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, HOOK_SECRET.as_bytes());
    let want = ring::hmac::sign(&key, format!("{ts}.{body}").as_bytes());
    let hex: String = want.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(header("X-Levee-Signature"), format!("sha256={hex}"));
    // Back to automatic: the incident closes, and says so too.
    assert_eq!(
        admin_post(e.admin, "/mode?site=test&mode=auto", Some(TOKEN)).0,
        200
    );
    let (_, body) = wait_for("incident_closed");
    assert!(body.contains("\"peak_rps\""));
    // The command gets each alert after the webhook.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let said = std::fs::read_to_string(&out).unwrap_or_default();
        if said.contains("\"kind\":\"incident_opened\"")
            && said.contains("\"kind\":\"incident_closed\"")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the command was not given both alerts: {said}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(e.metric("levee_alerts_total{result=\"sent\"}") >= 4.0);

    // A webhook that accepts and never answers: requests are not slowed,
    // and the failures are counted after the timeout.
    let (dead, _) = receiver(true);
    let dir = scratch("incidents-dead-hook");
    let extra = format!(
        "\n[incidents]\ndir = \"{}\"\ncooldown = \"1s\"\nwebhook = \"http://{dead}/levee\"\nwebhook_secret = \"{HOOK_SECRET}\"\nalert_timeout = \"1s\"\n",
        dir.display()
    );
    let e = Edge::start("incidents-dead-hook", &config(o.addr, "", &extra));
    assert_eq!(
        admin_post(e.admin, "/mode?site=test&mode=under_attack", Some(TOKEN)).0,
        200
    );
    let mut worst = Duration::ZERO;
    for i in 0..60 {
        let t = Instant::now();
        let (s, _) = http_get(e.addr, "/healthz", &[]);
        worst = worst.max(t.elapsed());
        assert!(s == 200 || s == 429 || s == 403, "{s}");
        if i % 10 == 0 {
            assert_eq!(
                admin_post(e.admin, "/mode?site=test&mode=elevated", Some(TOKEN)).0,
                200
            );
            assert_eq!(
                admin_post(e.admin, "/mode?site=test&mode=under_attack", Some(TOKEN)).0,
                200
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("slowest request with a dead webhook: {worst:?}");
    assert!(worst < Duration::from_millis(500), "{worst:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while e.metric("levee_alerts_total{result=\"failed\"}") < 1.0 {
        assert!(Instant::now() < deadline, "no failed delivery counted");
        std::thread::sleep(Duration::from_millis(100));
    }
}
