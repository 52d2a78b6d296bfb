//! Retention enforced by the edge: expired rotated copies of the access log
//! are deleted (and recorded in the hash-chained ledger with their hash),
//! recent ones, the live log and symbolic links are not; a legal hold
//! suspends deletion; `levee retention verify` passes on an untouched
//! ledger and names a file deleted by hand or a ledger line altered.

use super::*;
use std::path::Path;

fn aged(path: &Path, days: u64) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(days * 86_400))
        .unwrap();
}

fn old_file(dir: &Path, name: &str, days: u64) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{name}: 127.0.0.1 GET /\n")).unwrap();
    aged(&p, days);
    p
}

fn retention(e: &Edge, args: &[&str]) -> (i32, String) {
    let mut all = vec!["retention"];
    all.extend_from_slice(args);
    let cfg = e.config.to_str().unwrap().to_string();
    all.extend_from_slice(&["--config", &cfg]);
    let (code, out, err) = run(env!("CARGO_BIN_EXE_levee"), &all);
    (code, format!("{out}{err}"))
}

fn wait_gone(p: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while p.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    !p.exists()
}

#[test]
fn expired_logs_are_deleted_and_recorded_holds_and_verify_work() {
    let o = Origin::start();
    let e = Edge::start(
        "retention",
        &config(o.addr, "", "\n[retention]\nraw_days = 30\nevery = \"1s\"\n"),
    );
    let dir = e.dir.clone();
    let expired = old_file(&dir, "access.log.1", 40);
    let expired_gz = old_file(&dir, "access.log.2.gz", 400);
    let recent = old_file(&dir, "access.log.2026-11-30", 1);
    let outside = scratch("retention-outside");
    let target = old_file(&outside, "precious.log", 400);
    std::os::unix::fs::symlink(&target, dir.join("access.log.4")).unwrap();
    assert!(
        wait_gone(&expired) && wait_gone(&expired_gz),
        "expired copies still there"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(recent.exists() && dir.join("access.log").exists());
    assert!(
        dir.join("access.log.4").exists() && target.exists(),
        "a symlink was followed or removed"
    );
    let ledger = std::fs::read_to_string(dir.join("retention-ledger.jsonl")).unwrap();
    let (entries, _) = levee_privacy::ledger::verify(&ledger).unwrap();
    let deleted: Vec<&str> = entries
        .iter()
        .filter(|x| x.action == "file_deleted")
        .map(|x| x.subject.as_str())
        .collect();
    assert!(
        deleted.contains(&"access.log.1") && deleted.contains(&"access.log.2.gz"),
        "{deleted:?}"
    );
    let (code, out) = retention(&e, &["verify"]);
    assert_eq!(code, 0, "{out}");
    // A legal hold: an expired file stays.
    let (code, out) = retention(
        &e,
        &[
            "hold",
            "--incident",
            "inc-7",
            "--for",
            "1h",
            "--reason",
            "CERT report",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let held = old_file(&dir, "access.log.5", 400);
    std::thread::sleep(Duration::from_millis(2500));
    assert!(held.exists(), "deleted under a legal hold");
    // The edge's own entries after the hold still chain.
    let (code, out) = retention(&e, &["verify"]);
    assert_eq!(code, 0, "{out}");
    // A kept file deleted by hand is named.
    std::fs::remove_file(&recent).unwrap();
    let (code, out) = retention(&e, &["verify"]);
    assert_ne!(code, 0);
    assert!(out.contains("access.log.2026-11-30"), "{out}");
    // An altered ledger line is named.
    let text = std::fs::read_to_string(dir.join("retention-ledger.jsonl")).unwrap();
    std::fs::write(
        dir.join("retention-ledger.jsonl"),
        text.replacen("CERT report", "nothing", 1),
    )
    .unwrap();
    let (code, out) = retention(&e, &["verify"]);
    assert_ne!(code, 0);
    assert!(out.contains("altered"), "{out}");
}

fn get_from(e: &Edge, src: &str, path: &str) {
    let mut c = connect_from(src.parse().unwrap(), e.addr).unwrap();
    c.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let (resp, _) = read_until_close(&mut c, Duration::from_secs(5));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
}

fn lines_of(p: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Wait until `p` has `n` lines.
fn wait_lines(p: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = lines_of(p);
        if v.len() >= n || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn raw_and_pseudonymised_logs_side_by_side_and_erasure_through_the_running_edge() {
    let o = Origin::start();
    let keys = scratch("erase-keys");
    let text = config(o.addr, "", "\n[site.defense]\nenabled = false\n").replace(
        "[access_log]\npath = \"ACCESS_LOG\"",
        &format!(
            "[access_log]\npath = \"ACCESS_LOG\"\npseudonymize = true\nkey_dir = \"{}\"\nraw_path = \"RAW_LOG\"",
            keys.display()
        ),
    );
    let dir = scratch("erase-raw");
    let text = text.replace("RAW_LOG", &dir.join("access-raw.log").display().to_string());
    let e = Edge::start("erase", &text);
    let raw = dir.join("access-raw.log");
    let pseudo = e.dir.join("access.log");
    // An old rotated copy of the raw log that holds the person too.
    // (Records from yesterday: within the 30 days.)
    let yesterday = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 86_400_000;
    std::fs::write(
        dir.join("access-raw.log.1"),
        format!("{{\"ts_ms\":{yesterday},\"client\":\"127.0.40.4\",\"path\":\"/old\"}}\n{{\"ts_ms\":{yesterday},\"client\":\"127.0.40.5\",\"path\":\"/old\"}}\n"),
    )
    .unwrap();
    for i in 0..10 {
        get_from(&e, "127.0.40.4", &format!("/?n={i}"));
        get_from(&e, "127.0.40.5", &format!("/?n={i}"));
    }
    // Both logs have every line; only the raw one has addresses.
    let p = wait_lines(&pseudo, 20);
    let r = wait_lines(&raw, 20);
    assert_eq!((p.len(), r.len()), (20, 20));
    assert!(p
        .iter()
        .all(|l| l["client"].as_str().unwrap().starts_with("anon-")));
    assert_eq!(r.iter().filter(|l| l["client"] == "127.0.40.4").count(), 10);
    let ids = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter()
            .map(|l| l["request_id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&p), ids(&r), "the same requests in both");
    // status: both tiers, their days.
    let (code, out) = retention(&e, &["status", "--json"]);
    assert_eq!(code, 0, "{out}");
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let tiers: Vec<(&str, u64)> = s["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tier"].as_str().unwrap(), t["days"].as_u64().unwrap()))
        .collect();
    assert_eq!(tiers, [("pseudonymized", 365), ("raw", 30)]);
    // The edge writes the live logs: the CLI finds them locked and asks it.
    let admin = e.admin.to_string();
    let (code, out) = retention(
        &e,
        &[
            "erase",
            "--address",
            "127.0.40.4",
            "--reason",
            "SAR 2026-17",
            "--admin",
            &admin,
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("running edge"), "{out}");
    assert!(out.contains("erased 21 lines"), "{out}");
    let p = lines_of(&pseudo);
    let r = lines_of(&raw);
    assert_eq!(
        (p.len(), r.len()),
        (10, 10),
        "exactly that client's lines went"
    );
    assert!(r.iter().all(|l| l["client"] == "127.0.40.5"));
    let old = std::fs::read_to_string(dir.join("access-raw.log.1")).unwrap();
    assert!(!old.contains("127.0.40.4") && old.contains("127.0.40.5"));
    // The edge goes on writing to the new live logs.
    get_from(&e, "127.0.40.6", "/?after");
    assert_eq!(wait_lines(&pseudo, 11).len(), 11);
    assert_eq!(wait_lines(&raw, 11).len(), 11);
    // The ledger: the erasure, without the address; it verifies.
    let ledger = std::fs::read_to_string(e.dir.join("retention-ledger.jsonl")).unwrap();
    assert!(ledger.contains("\"erasure_done\"") && ledger.contains("SAR 2026-17"));
    assert!(!ledger.contains("127.0.40.4"));
    let (code, out) = retention(&e, &["verify"]);
    assert_eq!(code, 0, "{out}");
    // A reload reopens the logs (the same files, not rotated): they stay
    // locked, so the next erasure is still the edge's.
    e.signal("HUP");
    std::thread::sleep(Duration::from_millis(500));
    // A pseudonym: resolved through the raw log, so both go.
    let name = p[0]["client"].as_str().unwrap().to_string();
    let (code, out) = retention(
        &e,
        &[
            "erase",
            "--pseudonym",
            &name,
            "--reason",
            "SAR 2026-18",
            "--admin",
            &admin,
        ],
    );
    assert_eq!(code, 0, "{out}");
    // The logs the edge reopened after the first erasure are still locked:
    // the CLI asks the edge again rather than rewrite them under it.
    assert!(out.contains("running edge"), "{out}");
    assert!(
        lines_of(&raw).iter().all(|l| l["client"] != "127.0.40.5"),
        "{out}"
    );
    assert!(lines_of(&pseudo)
        .iter()
        .all(|l| l["client"] != name.as_str()));
    // The admin API: status and holds need the token.
    assert_eq!(http_get(e.admin, "/retention", &[]).0, 401);
    let auth = format!("Bearer {TOKEN}");
    let (st, body) = http_get(e.admin, "/retention", &[("Authorization", &auth)]);
    assert_eq!(st, 200, "{body}");
    assert!(
        body.contains("\"erasure_done\"") || body.contains("\"tiers\""),
        "{body}"
    );
    let (st, _) = admin_post(
        e.admin,
        "/retention/hold?incident=inc-8&for=1&reason=drill",
        None,
    );
    assert_eq!(st, 401);
    let (st, body) = admin_post(
        e.admin,
        "/retention/hold?incident=inc-8&for=1&reason=drill",
        Some(TOKEN),
    );
    assert_eq!(st, 200, "{body}");
    std::thread::sleep(Duration::from_millis(1100));
    // Under a legal hold, an erasure is refused with its reason, and nothing changes.
    let (code, out) = retention(
        &e,
        &[
            "hold",
            "--incident",
            "inc-9",
            "--until",
            "2099-01-01",
            "--reason",
            "NCSC case",
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2099-01-02T00:00:00Z"),
        "to the end of the day: {out}"
    );
    let before = std::fs::read_to_string(&raw).unwrap();
    let (code, out) = retention(
        &e,
        &[
            "erase",
            "--address",
            "127.0.40.6",
            "--reason",
            "SAR 2026-19",
            "--admin",
            &admin,
        ],
    );
    assert_ne!(code, 0);
    assert!(out.contains("inc-9") && out.contains("NCSC case"), "{out}");
    assert_eq!(std::fs::read_to_string(&raw).unwrap(), before);
    let (code, out) = retention(&e, &["status"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("HOLD inc-9 until 2099-01-02T00:00:00Z: NCSC case"),
        "{out}"
    );
}
