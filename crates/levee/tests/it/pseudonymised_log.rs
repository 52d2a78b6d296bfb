//! The pseudonymised access log (`[access_log] pseudonymize`): no raw
//! address anywhere in it, the same client under one key period keeps one
//! pseudonym (so `levee hunt` still finds an enumeration, naming the right
//! client's pseudonym), keys live apart from the logs and their creation is
//! in the hash-chained ledger; without its key the edge refuses to start.

use super::*;
use std::path::Path;

fn pseudonymised(o: &Origin, keys: &Path) -> String {
    // The log is under test, not the adaptive defense (which, after the
    // flood below, could challenge the walker depending on timing).
    config(
        o.addr,
        "",
        "\n[site.defense]\nenabled = false\n\n[drill]\ntoken = \"t0k3n\"\n",
    )
    .replace(
        "[access_log]\npath = \"ACCESS_LOG\"",
        &format!(
            "[access_log]\npath = \"ACCESS_LOG\"\npseudonymize = true\nkey_dir = \"{}\"",
            keys.display()
        ),
    )
}

#[test]
fn no_raw_address_in_the_log_and_hunt_still_finds_the_enumeration() {
    let o = Origin::start();
    let keys = scratch("pseudo-keys");
    let e = Edge::start("pseudo-log", &pseudonymised(&o, &keys));
    // A drill's flood, and one request from each of 300 more addresses.
    let target = e.url("/");
    let (code, s, err) = drill_raw(
        &e,
        &[
            "--target",
            &target,
            "--scenario",
            "carpet-bomb",
            "--warmup",
            "0",
            "--duration",
            "1",
            "--rate",
            "500",
            "--legit",
            "2",
            "--workers",
            "1",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(s["attack_sent"].as_f64().unwrap() >= 200.0, "{s}");
    for i in 0..300u32 {
        let src = format!("127.0.{}.{}", 100 + i / 200, 1 + i % 200);
        let mut c = connect_from(src.parse().unwrap(), e.addr).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let _ = read_until_close(&mut c, Duration::from_secs(3));
    }
    // One client walks the member records.
    for i in 1..=60 {
        let mut c = connect_from("127.0.77.7".parse().unwrap(), e.addr).unwrap();
        c.write_all(
            format!(
                "GET /api/members/{i} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        assert!(read_until_close(&mut c, Duration::from_secs(3))
            .0
            .starts_with("HTTP/1.1 200"));
    }
    // Another pulls a bulk export.
    for _ in 0..3 {
        let mut c = connect_from("127.0.88.8".parse().unwrap(), e.addr).unwrap();
        c.write_all(
            b"GET /big?bytes=2000000 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        assert!(read_until_close(&mut c, Duration::from_secs(5))
            .0
            .starts_with("HTTP/1.1 200"));
    }
    let lines = e.access_log(563);
    let text = std::fs::read_to_string(e.dir.join("access.log")).unwrap();
    assert!(
        !text.contains("\"client\":\"127."),
        "a raw address in the log"
    );
    assert!(!text.contains("127.0.77.7"));
    let clients: std::collections::BTreeSet<&str> =
        lines.iter().filter_map(|l| l["client"].as_str()).collect();
    assert!(
        clients.len() >= 300,
        "{} distinct pseudonyms",
        clients.len()
    );
    assert!(
        clients.iter().all(|c| c.starts_with("anon-")),
        "{clients:?}"
    );
    // The key is in its own directory; from it, the client's pseudonym.
    let key_files: Vec<PathBuf> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(key_files.len(), 1, "{key_files:?}");
    let key = std::fs::read(&key_files[0]).unwrap();
    let walker = levee_privacy::Pseudonymizer::new(&key, false).ip("127.0.77.7".parse().unwrap());
    let exporter = levee_privacy::Pseudonymizer::new(&key, false).ip("127.0.88.8".parse().unwrap());
    assert!(clients.contains(walker.as_str()));
    // The ledger recorded the key's creation, and verifies.
    let ledger = std::fs::read_to_string(e.dir.join("retention-ledger.jsonl")).unwrap();
    let (entries, _) = levee_privacy::ledger::verify(&ledger).unwrap();
    assert_eq!(entries[0].action, "key_created");
    // levee hunt on the pseudonymised log finds the walk, under that pseudonym.
    let none = e.dir.join("none.txt");
    std::fs::write(&none, "# no indicators\n").unwrap();
    let json = e.dir.join("hunt.json");
    let log = e.dir.join("access.log");
    let (_, out, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &[
            "hunt",
            "--json",
            json.to_str().unwrap(),
            "--ioc",
            none.to_str().unwrap(),
            "--personal",
            "/api/members",
            "--export",
            "/big",
            log.to_str().unwrap(),
        ],
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
            .unwrap_or_else(|_| panic!("no hunt report: {out}{err}"));
    let found = v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["detector"] == "id_enumeration")
        .unwrap_or_else(|| panic!("no enumeration: {v}"));
    assert_eq!(found["client"], walker.as_str());
    let export = v["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["detector"] == "export_without_login")
        .unwrap_or_else(|| panic!("no bulk export: {v}"));
    assert_eq!(export["client"], exporter.as_str());
}

/// Every key a file could hold: each 32-byte window of it, and each run of
/// 64 hex digits decoded.
fn candidate_keys(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = bytes.windows(32).map(<[u8]>::to_vec).collect();
    let text = String::from_utf8_lossy(bytes);
    let hex: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i + 64 <= hex.len() {
        let run: String = hex[i..i + 64].iter().collect();
        if run.chars().all(|c| c.is_ascii_hexdigit()) {
            out.push(
                (0..32)
                    .map(|k| u8::from_str_radix(&run[2 * k..2 * k + 2], 16).unwrap())
                    .collect(),
            );
        }
        i += 1;
    }
    out
}

#[test]
fn once_its_key_is_destroyed_no_file_levee_keeps_links_the_old_pseudonym() {
    let o = Origin::start();
    let keys = scratch("pseudo-destroy-keys");
    let text = pseudonymised(&o, &keys).replace(
        "pseudonymize = true",
        "pseudonymize = true\nkey_rotation = \"1s\"\nkey_linkable = \"1s\"",
    );
    let e = Edge::start("pseudo-destroy", &text);
    let who: IpAddr = "127.0.66.6".parse().unwrap();
    let mut c = connect_from(who, e.addr).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let _ = read_until_close(&mut c, Duration::from_secs(3));
    let old = e.access_log(1)[0]["client"].as_str().unwrap().to_string();
    // While its key is kept, the pseudonym is recomputable from it.
    let linkable = |name: &str| {
        let mut files = Vec::new();
        for d in [&keys, &e.dir] {
            for f in std::fs::read_dir(d).unwrap().flatten() {
                if f.file_type().unwrap().is_file() {
                    files.push(f.path());
                }
            }
        }
        files.into_iter().any(|f| {
            candidate_keys(&std::fs::read(&f).unwrap_or_default())
                .iter()
                .any(|k| levee_privacy::Pseudonymizer::new(k, false).ip(who) == name)
        })
    };
    assert!(linkable(&old), "the live key does not give the pseudonym");
    // Its period (1 s) and linkable time (1 s) pass: the key is destroyed,
    // and recorded.
    let deadline = Instant::now() + Duration::from_secs(8);
    let ledger = e.dir.join("retention-ledger.jsonl");
    loop {
        let t = std::fs::read_to_string(&ledger).unwrap_or_default();
        if t.contains("\"key_destroyed\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no key destroyed: {t}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (entries, _) =
        levee_privacy::ledger::verify(&std::fs::read_to_string(&ledger).unwrap()).unwrap();
    let first_key = entries
        .iter()
        .find(|x| x.action == "key_created")
        .unwrap()
        .subject
        .clone();
    assert!(entries
        .iter()
        .any(|x| x.action == "key_destroyed" && x.subject == first_key));
    assert!(!keys.join(&first_key).exists());
    // No file in the key directory or beside the logs gives it back.
    assert!(
        !linkable(&old),
        "a file Levee keeps still links {old} to its address"
    );
    // The old line is still there, under its now-unlinkable pseudonym.
    let text = std::fs::read_to_string(e.dir.join("access.log")).unwrap();
    assert!(text.contains(&old) && !text.contains("127.0.66.6"));
}

#[test]
fn without_its_key_directory_the_edge_does_not_start() {
    let o = Origin::start();
    let dir = scratch("pseudo-nokeys");
    let missing = scratch("pseudo-nokeys-elsewhere").join("no-such-dir");
    let cfg = pseudonymised(&o, &missing)
        .replace("ACCESS_LOG", &dir.join("access.log").display().to_string());
    let file = dir.join("levee.toml");
    std::fs::write(&file, cfg).unwrap();
    let (code, _, err) = run(
        "timeout",
        &[
            "10",
            env!("CARGO_BIN_EXE_levee"),
            "serve",
            "--config",
            file.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 124, "it started: {err}");
    assert_ne!(code, 0);
    assert!(
        err.contains("key_dir") && err.contains("create it"),
        "{err}"
    );
    assert!(
        !dir.join("access.log").exists()
            || std::fs::read_to_string(dir.join("access.log"))
                .unwrap()
                .is_empty()
    );
    // Keys inside the log's own directory are refused by the configuration check.
    let inside = pseudonymised(&o, &dir.join("keys"))
        .replace("ACCESS_LOG", &dir.join("access.log").display().to_string());
    std::fs::write(&file, inside).unwrap();
    let (code, _, err) = run(
        env!("CARGO_BIN_EXE_levee"),
        &["check", "--config", file.to_str().unwrap()],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("access_log.key_dir") && err.contains("apart from the logs"),
        "{err}"
    );
}
