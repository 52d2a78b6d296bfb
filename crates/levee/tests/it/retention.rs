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
