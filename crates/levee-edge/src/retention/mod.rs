//! Retention, enforced (`[retention]`): the access logs' rotated files —
//! logrotate's numbered and dated names, compressed or not
//! (`access.log.1`, `access.log.2.gz`, `access.log-20260901`,
//! `access.log.2026-09-01.gz`) — are deleted once older than their tier's
//! days (the pseudonymised log `pseudonymized_days`, a raw log `raw_days`),
//! at start and then every `every`, by the access log's own thread. A
//! file's age is that of its newest record where it can be read (the last
//! line's `ts_ms`, for an uncompressed file), else its modification time:
//! a copy touched later is still deleted by the time of what it holds.
//!
//! Each deletion is recorded in the ledger with the file's size, time range
//! and SHA-256, before the file goes; each sweep records what it kept (so
//! that `verify` notices a file removed by hand). While a legal hold is
//! active, nothing is deleted. Erasure of one person's lines is `erase`;
//! what is held and what goes next is `status`.
//!
//! It never deletes the live log, anything that is not a regular file (a
//! symbolic link is neither followed nor removed), or anything outside the
//! log's directory.

pub(crate) mod erase;
mod status;

pub use status::status;

use crate::ledger::Ledger;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

/// One log and how long its rotated copies are kept.
#[derive(Debug, Clone)]
pub(crate) struct Tier {
    pub log: PathBuf,
    pub days: u32,
    /// `"pseudonymized"` or `"raw"`.
    pub name: &'static str,
}

/// The file logs of `cfg`, with their tiers (none for standard output).
pub(crate) fn tiers(cfg: &levee_config::Config) -> Vec<Tier> {
    tiers_of(&cfg.access_log, &cfg.retention)
}

pub(crate) fn tiers_of(a: &levee_config::AccessLog, r: &levee_config::Retention) -> Vec<Tier> {
    let mut out = Vec::new();
    if a.path != "-" && a.path != "off" {
        out.push(if a.pseudonymize {
            Tier {
                log: PathBuf::from(&a.path),
                days: r.pseudonymized_days,
                name: "pseudonymized",
            }
        } else {
            Tier {
                log: PathBuf::from(&a.path),
                days: r.raw_days,
                name: "raw",
            }
        });
        if let (true, Some(raw)) = (a.pseudonymize, a.raw_path.as_deref()) {
            out.push(Tier {
                log: PathBuf::from(raw),
                days: r.raw_days,
                name: "raw",
            });
        }
    }
    out
}

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

pub(crate) fn sha256_of(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(levee_privacy::ledger::hex(ctx.finish().as_ref()))
}

/// A log file on disk.
#[derive(Debug, Clone)]
pub(crate) struct LogFile {
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
    pub mtime_ms: u64,
    /// The first and last records' times, where readable.
    pub first_ms: Option<u64>,
    pub last_ms: Option<u64>,
    /// The live log (never deleted).
    pub live: bool,
}

impl LogFile {
    /// The time its age is counted from: the newest record, else the mtime.
    pub(crate) fn newest_ms(&self) -> u64 {
        self.last_ms.unwrap_or(self.mtime_ms)
    }
}

/// The `ts_ms` of a log line, if it is one of ours (or any JSON line with it).
pub(crate) fn ts_of(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"ts_ms\":")?;
    let end = rest.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The first and last records' times of a file: both for a plain file
/// (its head and tail are read), the first only for a `.gz` (its tail
/// cannot be read without decompressing all of it).
fn record_times(path: &Path) -> (Option<u64>, Option<u64>) {
    use std::io::{BufRead, Read, Seek, SeekFrom};
    const SPAN: u64 = 64 * 1024;
    let first_line = |r: &mut dyn BufRead| {
        let mut line = Vec::new();
        let _ = r.take(SPAN).read_until(b'\n', &mut line);
        ts_of(&line)
    };
    if path.extension().is_some_and(|e| e == "gz") {
        return match erase::reader(path) {
            Ok(mut r) => (first_line(&mut r), None),
            Err(_) => (None, None),
        };
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return (None, None);
    };
    let first = first_line(&mut std::io::BufReader::new(&mut f));
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut tail = Vec::new();
    let last = f
        .seek(SeekFrom::Start(len.saturating_sub(SPAN)))
        .ok()
        .and_then(|_| f.take(SPAN).read_to_end(&mut tail).ok())
        .and_then(|_| tail.split(|&b| b == b'\n').rev().find_map(ts_of));
    (first, last)
}

/// The live log and its rotated copies, in its directory (sorted by name).
pub(crate) fn log_files(log: &Path) -> Vec<LogFile> {
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
    let mut out: Vec<LogFile> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let live = name == base;
            // Not followed: the entry's own type, not its target's.
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            if !meta.file_type().is_file() || !(live || rotated(base, &name)) {
                return None;
            }
            let mtime_ms = meta
                .modified()
                .ok()?
                .duration_since(UNIX_EPOCH)
                .unwrap_or(Duration::ZERO)
                .as_millis() as u64;
            let (first_ms, last_ms) = record_times(&e.path());
            Some(LogFile {
                name,
                path: e.path(),
                bytes: meta.len(),
                mtime_ms,
                first_ms,
                last_ms,
                live,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Whether a writer holds the file's lock (a Levee edge still writing to a
/// copy that logrotate renamed before the edge reopened its log).
pub(super) fn open_for_writing(path: &Path) -> bool {
    std::fs::File::open(path)
        .map(|f| matches!(f.try_lock(), Err(std::fs::TryLockError::WouldBlock)))
        .unwrap_or(false)
}

/// Erasures whose start the ledger has and whose end it has not (a crash
/// in the middle): (time, reason).
pub(crate) fn unfinished_erasures(entries: &[levee_privacy::ledger::Entry]) -> Vec<(u64, String)> {
    let mut open: Vec<(u64, String)> = Vec::new();
    for e in entries {
        match e.action.as_str() {
            "erasure_started" => open.push((
                e.ts_ms,
                e.detail["reason"].as_str().unwrap_or("").to_string(),
            )),
            "erasure_done" => {
                open.pop();
            }
            _ => {}
        }
    }
    open
}

/// How the ledger names a file: relative to the ledger's directory when in
/// it, else by its full path.
pub(crate) fn subject(ledger_dir: &Path, path: &Path) -> String {
    match path.parent() {
        Some(d) if same_dir(d, ledger_dir) => path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        _ => path.display().to_string(),
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    let norm = |p: &Path| {
        if p.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            p.to_path_buf()
        }
    };
    let (a, b) = (norm(a), norm(b));
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// The legal holds in force at `now_ms`: (subject, until, reason).
pub(crate) fn active_holds(
    entries: &[levee_privacy::ledger::Entry],
    now_ms: u64,
) -> Vec<(String, u64, String)> {
    entries
        .iter()
        .filter(|e| e.action == "hold")
        .filter_map(|e| {
            let until = e.detail["until_ms"].as_u64()?;
            (until > now_ms).then(|| {
                (
                    e.subject.clone(),
                    until,
                    e.detail["reason"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect()
}

/// One sweep of `tier` at `now_ms`: delete its rotated copies older than
/// its days, unless a hold is active. Returns the names deleted.
pub(crate) fn sweep(tier: &Tier, ledger: &mut Ledger, now_ms: u64) -> Vec<String> {
    let files = log_files(&tier.log);
    let held = ledger.holds().iter().any(|&until| until > now_ms);
    let max_age_ms = u64::from(tier.days) * 86_400_000;
    let ledger_dir = ledger.dir().to_path_buf();
    let mut deleted = Vec::new();
    let mut kept = Vec::new();
    for f in files {
        if f.live {
            continue;
        }
        if held || now_ms.saturating_sub(f.newest_ms()) <= max_age_ms || open_for_writing(&f.path) {
            kept.push(
                serde_json::json!({"file": f.name, "bytes": f.bytes, "mtime_ms": f.mtime_ms}),
            );
            continue;
        }
        let Ok(hash) = sha256_of(&f.path) else {
            continue;
        };
        // Recorded first: a crash after this leaves an entry for a file
        // still there (verify says so), never a file gone without one.
        let detail = serde_json::json!({
            "bytes": f.bytes,
            "mtime_ms": f.mtime_ms,
            "first_record_ms": f.first_ms,
            "last_record_ms": f.last_ms,
            "sha256": hash,
            "tier": tier.name,
            "days": tier.days,
        });
        if ledger
            .append(
                now_ms,
                "file_deleted",
                &subject(&ledger_dir, &f.path),
                detail,
            )
            .is_err()
        {
            continue;
        }
        match std::fs::remove_file(&f.path) {
            Ok(()) => deleted.push(f.name),
            Err(e) => eprintln!("levee: retention: cannot delete {}: {e}", f.path.display()),
        }
    }
    if !deleted.is_empty() || !kept.is_empty() {
        let _ = ledger.append(
            now_ms,
            "inventory",
            &tier.log.display().to_string(),
            serde_json::json!({"kept": kept, "held": held, "tier": tier.name}),
        );
    }
    deleted
}

/// Record a legal hold in `cfg`'s ledger: nothing is deleted or erased
/// before `until_ms`.
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
    let ledger_dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // Per log: the files its last inventory kept must still be there,
    // unless deleted (or erased and rewritten) since.
    let mut logs: Vec<&str> = entries
        .iter()
        .filter(|e| e.action == "inventory")
        .map(|e| e.subject.as_str())
        .collect();
    logs.sort_unstable();
    logs.dedup();
    for log in logs {
        let Some(i) = entries
            .iter()
            .rposition(|e| e.action == "inventory" && e.subject == log)
        else {
            continue;
        };
        let dir = Path::new(log).parent().unwrap_or(Path::new("."));
        let deleted_after: Vec<String> = entries[i..]
            .iter()
            .filter(|e| e.action == "file_deleted")
            .map(|e| ledger_dir.join(&e.subject).display().to_string())
            .collect();
        for k in entries[i].detail["kept"].as_array().into_iter().flatten() {
            let Some(f) = k["file"].as_str() else {
                continue;
            };
            let p = dir.join(f);
            if !deleted_after.contains(&p.display().to_string()) && !p.exists() {
                problems.push(format!(
                    "{}: kept by the last sweep, now missing (deleted outside the ledger?)",
                    p.display()
                ));
            }
        }
    }
    for (ts, reason) in unfinished_erasures(&entries) {
        problems.push(format!(
            "an erasure started at {ts} ms ({reason}) never finished: run it again (lines may remain)"
        ));
    }
    for e in &entries {
        match e.action.as_str() {
            "file_deleted" if ledger_dir.join(&e.subject).exists() => {
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
        let tier = Tier {
            log: log.clone(),
            days: 30,
            name: "raw",
        };
        assert!(sweep(&tier, &mut l, now).is_empty());
        // After it: the expired copies go; the live log, the recent copy,
        // the symbolic link and its target stay.
        let mut gone = sweep(&tier, &mut l, now + 2000);
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

    #[test]
    fn a_file_is_as_old_as_its_newest_record() {
        let d = std::env::temp_dir().join(format!("levee-retention-rt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let log = d.join("access.log");
        std::fs::write(&log, "").unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let day = 86_400_000;
        let lines = |from: u64, to: u64| {
            format!(
                "{{\"ts_ms\":{from},\"client\":\"192.0.2.1\"}}\n{{\"ts_ms\":{to},\"client\":\"192.0.2.2\"}}\n"
            )
        };
        // Touched today, records 40 days old: deleted by its records.
        std::fs::write(
            d.join("access.log.1"),
            lines(now - 41 * day, now - 40 * day),
        )
        .unwrap();
        // Old mtime, records from yesterday (restored from a backup): kept.
        std::fs::write(d.join("access.log.2"), lines(now - 2 * day, now - day)).unwrap();
        aged(&d.join("access.log.2"), 400);
        // Not ours (no records): its mtime decides.
        std::fs::write(d.join("access.log.3"), "old text\n").unwrap();
        aged(&d.join("access.log.3"), 40);
        let files = log_files(&log);
        let f1 = files.iter().find(|f| f.name == "access.log.1").unwrap();
        assert_eq!(
            (f1.first_ms, f1.last_ms),
            (Some(now - 41 * day), Some(now - 40 * day))
        );
        let mut l = Ledger::open(d.join("retention-ledger.jsonl")).unwrap();
        let tier = Tier {
            log: log.clone(),
            days: 30,
            name: "raw",
        };
        // Expired, but still written to (its writer holds the lock): kept.
        std::fs::write(
            d.join("access.log.4"),
            lines(now - 41 * day, now - 40 * day),
        )
        .unwrap();
        let writer = std::fs::File::options()
            .append(true)
            .open(d.join("access.log.4"))
            .unwrap();
        writer.lock().unwrap();
        let mut gone = sweep(&tier, &mut l, now);
        gone.sort();
        assert_eq!(gone, vec!["access.log.1", "access.log.3"]);
        drop(writer);
        assert_eq!(sweep(&tier, &mut l, now), vec!["access.log.4"]);
        let text = std::fs::read_to_string(d.join("retention-ledger.jsonl")).unwrap();
        let (entries, _) = levee_privacy::ledger::verify(&text).unwrap();
        let e = entries
            .iter()
            .find(|e| e.subject == "access.log.1")
            .unwrap();
        assert_eq!(e.detail["first_record_ms"], now - 41 * day);
        assert_eq!(e.detail["last_record_ms"], now - 40 * day);
        assert_eq!(e.detail["tier"], "raw");
    }
}
