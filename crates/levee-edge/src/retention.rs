//! Retention, enforced (`[retention]`): the access log's rotated files —
//! logrotate's numbered and dated names, compressed or not
//! (`access.log.1`, `access.log.2.gz`, `access.log-20260901`,
//! `access.log.2026-09-01.gz`) — are deleted once older than their tier's
//! days (raw or pseudonymised), at start and then every `every`, by the
//! access log's own thread. Each deletion is recorded in the ledger with
//! the file's size, modification time and SHA-256, before the file goes;
//! each sweep records what it kept (so that `verify` notices a file removed
//! by hand). While a legal hold is active, nothing is deleted.
//!
//! It never deletes the live log, anything that is not a regular file (a
//! symbolic link is neither followed nor removed), or anything outside the
//! log's directory.

use crate::ledger::Ledger;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// Whether `name` is a rotated copy of the log called `base`.
fn rotated(base: &str, name: &str) -> bool {
    let Some(rest) = name.strip_prefix(base) else {
        return false;
    };
    let rest = rest.strip_suffix(".gz").unwrap_or(rest);
    let Some(suffix) = rest.strip_prefix('.').or_else(|| rest.strip_prefix('-')) else {
        return false;
    };
    !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit() || b == b'-')
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The rotated copies of `log` in its directory: (name, path, size, mtime ms).
fn rotated_files(log: &Path) -> Vec<(String, PathBuf, u64, u64)> {
    let (Some(dir), Some(base)) = (log.parent(), log.file_name().and_then(|b| b.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf, u64, u64)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            // Not followed: the entry's own type, not its target's.
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            if !meta.file_type().is_file() || !rotated(base, &name) {
                return None;
            }
            let mtime = meta
                .modified()
                .ok()?
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64;
            Some((name, e.path(), meta.len(), mtime))
        })
        .collect();
    out.sort();
    out
}

/// One sweep at `now_ms`: delete the rotated copies of `log` older than
/// `days`, unless a hold is active. Returns the names deleted.
pub(crate) fn sweep(log: &Path, days: u32, ledger: &mut Ledger, now_ms: u64) -> Vec<String> {
    let files = rotated_files(log);
    let held = ledger.holds().iter().any(|&until| until > now_ms);
    let max_age_ms = u64::from(days) * 86_400_000;
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for (name, path, size, mtime) in files {
        if held || now_ms.saturating_sub(mtime) <= max_age_ms {
            kept.push(serde_json::json!({"file": name, "bytes": size, "mtime_ms": mtime}));
            continue;
        }
        let Ok(hash) = sha256_of(&path) else {
            continue;
        };
        // Recorded first: a crash after this leaves an entry for a file
        // still there (verify says so), never a file gone without one.
        let detail =
            serde_json::json!({"bytes": size, "mtime_ms": mtime, "sha256": hash, "days": days});
        if ledger
            .append(now_ms, "file_deleted", &name, detail)
            .is_err()
        {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => deleted.push(name),
            Err(e) => eprintln!("levee: retention: cannot delete {}: {e}", path.display()),
        }
    }
    if !deleted.is_empty() || !kept.is_empty() {
        let _ = ledger.append(
            now_ms,
            "inventory",
            &log.display().to_string(),
            serde_json::json!({"kept": kept, "held": held}),
        );
    }
    deleted
}

/// Record a legal hold in `cfg`'s ledger: nothing is deleted before `until_ms`.
pub fn hold(
    cfg: &levee_config::Config,
    subject: &str,
    until_ms: u64,
    reason: &str,
    now_ms: u64,
) -> Result<(), String> {
    let mut l = Ledger::open(crate::ledger::path_of(&cfg.access_log)).map_err(|e| e.to_string())?;
    l.append(
        now_ms,
        "hold",
        subject,
        serde_json::json!({"until_ms": until_ms, "reason": reason}),
    )
    .map_err(|e| format!("cannot append to the ledger: {e}"))
}

/// What `verify` found wrong, each naming its file or ledger line.
pub fn verify(cfg: &levee_config::Config) -> Vec<String> {
    let path = crate::ledger::path_of(&cfg.access_log);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let entries = match levee_privacy::ledger::verify(&text) {
        Ok((e, _)) => e,
        Err(e) => return vec![format!("{}: {e}", path.display())],
    };
    let mut problems = Vec::new();
    let log = Path::new(&cfg.access_log.path);
    let dir = log.parent().unwrap_or(Path::new("."));
    // Files the last inventory kept must still be there, unless deleted since.
    let last_inv = entries.iter().rposition(|e| e.action == "inventory");
    if let Some(i) = last_inv {
        let deleted_after: Vec<&str> = entries[i..]
            .iter()
            .filter(|e| e.action == "file_deleted")
            .map(|e| e.subject.as_str())
            .collect();
        for k in entries[i].detail["kept"].as_array().into_iter().flatten() {
            let Some(f) = k["file"].as_str() else {
                continue;
            };
            if !deleted_after.contains(&f) && !dir.join(f).exists() {
                problems.push(format!(
                    "{f}: kept by the last sweep, now missing (deleted outside the ledger?)"
                ));
            }
        }
    }
    for e in &entries {
        match e.action.as_str() {
            "file_deleted" if dir.join(&e.subject).exists() => {
                problems.push(format!("{}: recorded as deleted, still present", e.subject));
            }
            "key_destroyed" => {
                if let Some(k) = cfg.access_log.key_dir.as_deref() {
                    if Path::new(k).join(&e.subject).exists() {
                        problems.push(format!(
                            "{}: recorded as destroyed, still present",
                            e.subject
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aged(path: &Path, days: u64) {
        let f = std::fs::File::options().write(true).open(path).unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(days * 86_400))
            .unwrap();
    }

    #[test]
    fn rotated_names() {
        for n in [
            "access.log.1",
            "access.log.2.gz",
            "access.log-20260901",
            "access.log.2026-09-01.gz",
        ] {
            assert!(rotated("access.log", n), "{n}");
        }
        for n in [
            "access.log",
            "access.log.gz",
            "access.log.bak",
            "other.log.1",
            "access.logx.1",
            "access.log.",
        ] {
            assert!(!rotated("access.log", n), "{n}");
        }
    }

    #[test]
    fn expired_files_go_held_and_symlinked_ones_stay_and_the_ledger_verifies() {
        let d = std::env::temp_dir().join(format!("levee-retention-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("logs")).unwrap();
        std::fs::create_dir_all(d.join("elsewhere")).unwrap();
        let log = d.join("logs/access.log");
        for (n, age) in [
            ("access.log", 400),
            ("access.log.1", 40),
            ("access.log.2.gz", 400),
            ("access.log.2026-09-01", 5),
        ] {
            let p = d.join("logs").join(n);
            std::fs::write(&p, format!("{n}\n")).unwrap();
            aged(&p, age);
        }
        let outside = d.join("elsewhere/precious.log");
        std::fs::write(&outside, "keep me\n").unwrap();
        aged(&outside, 400);
        std::os::unix::fs::symlink(&outside, d.join("logs/access.log.3")).unwrap();
        let ledger_path = d.join("logs/retention-ledger.jsonl");
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        // A hold: nothing is deleted.
        let mut l = Ledger::open(ledger_path.clone()).unwrap();
        l.append(
            now,
            "hold",
            "incident-7",
            serde_json::json!({"until_ms": now + 1000, "reason": "CERT report"}),
        )
        .unwrap();
        assert!(sweep(&log, 30, &mut l, now).is_empty());
        // After it: the expired copies go; the live log, the recent copy,
        // the symbolic link and its target stay.
        let mut gone = sweep(&log, 30, &mut l, now + 2000);
        gone.sort();
        assert_eq!(gone, vec!["access.log.1", "access.log.2.gz"]);
        assert!(log.exists() && d.join("logs/access.log.2026-09-01").exists());
        assert!(d.join("logs/access.log.3").exists() && outside.exists());
        let text = std::fs::read_to_string(&ledger_path).unwrap();
        let (entries, _) = levee_privacy::ledger::verify(&text).unwrap();
        let del = entries.iter().find(|e| e.action == "file_deleted").unwrap();
        assert_eq!(del.detail["sha256"].as_str().unwrap().len(), 64);
        // verify: clean now; a kept file removed by hand is named.
        let text_cfg = format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\n[access_log]\npath = {:?}\n[[site]]\nname = \"a\"\nhosts = [\"a\"]\n[[site.origin]]\naddress = \"127.0.0.1:9\"\n",
            log.to_string_lossy()
        );
        let cfg = levee_config::parse("t.toml", &text_cfg).unwrap();
        assert_eq!(verify(&cfg), Vec::<String>::new());
        std::fs::remove_file(d.join("logs/access.log.2026-09-01")).unwrap();
        let p = verify(&cfg);
        assert!(
            p.len() == 1 && p[0].contains("access.log.2026-09-01"),
            "{p:?}"
        );
        // Tampering with the ledger is named by its line.
        std::fs::write(&ledger_path, text.replace("\"days\":30", "\"days\":3")).unwrap();
        let p = verify(&cfg);
        assert!(p[0].contains("altered"), "{p:?}");
    }
}
