//! Erasure on request (GDPR Art. 17): one person's lines removed from every
//! log still held — the live logs and their rotated copies, raw and
//! pseudonymised, compressed or not.
//!
//! A person is named by an address (matched raw in raw logs, and by its
//! pseudonym under every key still present in pseudonymised logs) or by a
//! pseudonym (matched as written; resolved to its address through the raw
//! logs when they are kept, so those lines go too). Lines from a period
//! whose key is destroyed cannot be linked to anyone and stay.
//!
//! Refused while a legal hold is in force, naming it. Each file is
//! rewritten beside itself (same mode and modification time, synced) and
//! renamed over the original, so a crash leaves the old file or the new,
//! never half of one. The ledger records the erasure's start (with its
//! reason, never the address), every file changed with its line counts and
//! new hash, and its end; a start without an end shows in `status`.
//!
//! Who may rewrite the live log: only its writer. The edge's access-log
//! thread runs an erasure asked through the admin API between two writes;
//! `levee retention erase` runs it itself only when no process holds the
//! live logs' lock, and otherwise asks the running edge.

use super::{active_holds, log_files, subject, tiers_of};
use crate::ledger::Ledger;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Whose lines to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Person {
    Address(IpAddr),
    Pseudonym(String),
}

/// Why an erasure did not run (or stopped).
#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("refused: legal hold {subject:?} is in force until {until_ms} ms since the epoch ({reason}); the logs it covers must stay as they are")]
    Held {
        subject: String,
        until_ms: u64,
        reason: String,
    },
    #[error("{0} is open for writing by a running edge: ask it (levee retention erase --admin ADDR, or POST /retention/erase on its admin listener)")]
    Busy(PathBuf),
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: String },
    #[error("the retention ledger: {0}")]
    Ledger(String),
}

/// One file an erasure changed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileErased {
    pub file: String,
    pub lines_removed: u64,
    pub lines_kept: u64,
}

/// What an erasure did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Erased {
    pub files: Vec<FileErased>,
    pub files_scanned: usize,
    pub lines_removed: u64,
    /// For a pseudonym: whether its address was found in a raw log.
    pub resolved: Option<bool>,
}

const CLIENT_KEY: &[u8] = b"\"client\":\"";

/// The client field of one of our log lines.
fn client_of(line: &[u8]) -> Option<&[u8]> {
    client_with(&memchr::memmem::Finder::new(CLIENT_KEY), line)
}

fn client_with<'l>(f: &memchr::memmem::Finder<'_>, line: &'l [u8]) -> Option<&'l [u8]> {
    let at = f.find(line)? + CLIENT_KEY.len();
    let len = memchr::memchr(b'"', &line[at..])?;
    Some(&line[at..at + len])
}

/// A writer that hashes what it writes (the new file's SHA-256, without
/// reading it again).
struct Hashing<W: Write> {
    w: W,
    ctx: ring::digest::Context,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(buf)?;
        self.ctx.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// The strings that name `who` in any log, and whether a pseudonym was
/// resolved to an address.
fn needles(
    who: &Person,
    keys: &[(String, levee_privacy::Pseudonymizer)],
    raw_files: &[PathBuf],
) -> (Vec<Vec<u8>>, Option<bool>) {
    let of_address = |ip: IpAddr| {
        let mut v = vec![ip.to_canonical().to_string().into_bytes()];
        v.extend(keys.iter().map(|(_, p)| p.ip(ip).into_bytes()));
        v
    };
    match who {
        Person::Address(ip) => (of_address(*ip), None),
        Person::Pseudonym(p) => {
            let found = resolve(p, keys, raw_files);
            let mut v = found.map(of_address).unwrap_or_default();
            v.push(p.as_bytes().to_vec());
            (v, Some(found.is_some()))
        }
    }
}

/// The address whose pseudonym (under a key still present) is `p`, found
/// among the raw logs' clients.
fn resolve(
    p: &str,
    keys: &[(String, levee_privacy::Pseudonymizer)],
    raw_files: &[PathBuf],
) -> Option<IpAddr> {
    let mut seen = std::collections::HashSet::new();
    for f in raw_files {
        let Ok(r) = reader(f) else { continue };
        for line in r.split(b'\n').map_while(Result::ok) {
            let Some(ip) = client_of(&line)
                .and_then(|c| std::str::from_utf8(c).ok())
                .and_then(|c| c.parse::<IpAddr>().ok())
            else {
                continue;
            };
            // Bounded: the set is cleared when large (a repeat costs an HMAC).
            if seen.len() > 65_536 {
                seen.clear();
            }
            if seen.insert(ip) && keys.iter().any(|(_, k)| k.ip(ip) == p) {
                return Some(ip);
            }
        }
    }
    None
}

pub(super) fn reader(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let f = std::fs::File::open(path)?;
    Ok(if path.extension().is_some_and(|e| e == "gz") {
        Box::new(std::io::BufReader::with_capacity(
            256 * 1024,
            flate2::read::MultiGzDecoder::new(f),
        ))
    } else {
        Box::new(std::io::BufReader::with_capacity(256 * 1024, f))
    })
}

/// Rewrite `path` without the lines naming a needle. Returns (removed,
/// kept, the new file's SHA-256); an unchanged file is left as it was.
fn rewrite(path: &Path, needles: &[Vec<u8>]) -> std::io::Result<(u64, u64, String)> {
    let meta = std::fs::metadata(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.erasing"));
    let gz = path.extension().is_some_and(|e| e == "gz");
    let (mut removed, mut kept) = (0u64, 0u64);
    let finder = memchr::memmem::Finder::new(CLIENT_KEY);
    let mut hashing = Hashing {
        w: std::io::BufWriter::with_capacity(256 * 1024, std::fs::File::create(&tmp)?),
        ctx: ring::digest::Context::new(&ring::digest::SHA256),
    };
    let mut r = reader(path)?;
    let mut filter = |w: &mut dyn Write| -> std::io::Result<()> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return w.flush();
            }
            let hit = client_with(&finder, &line).is_some_and(|c| needles.iter().any(|n| n == c));
            if hit {
                removed += 1;
            } else {
                kept += 1;
                w.write_all(&line)?;
            }
        }
    };
    if gz {
        let mut e = flate2::write::GzEncoder::new(&mut hashing, flate2::Compression::default());
        filter(&mut e)?;
        e.finish()?;
    } else {
        filter(&mut hashing)?;
    }
    hashing.flush()?;
    let Hashing { w, ctx } = hashing;
    drop(w);
    let sha = levee_privacy::ledger::hex(ctx.finish().as_ref());
    if removed == 0 {
        std::fs::remove_file(&tmp)?;
        return Ok((0, kept, sha));
    }
    let f = std::fs::OpenOptions::new().write(true).open(&tmp)?;
    f.set_permissions(meta.permissions())?;
    f.set_modified(meta.modified()?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok((removed, kept, sha))
}

/// Erase `who` from every log of `a` (and its rotated copies). With
/// `writer`, the caller is the live logs' writer; without, a live log held
/// by another process is `Busy`.
pub(crate) fn erase(
    a: &levee_config::AccessLog,
    r: &levee_config::Retention,
    who: &Person,
    reason: &str,
    ledger: &mut Ledger,
    now_ms: u64,
    writer: bool,
) -> Result<Erased, EraseError> {
    let text = std::fs::read_to_string(crate::ledger::path_of(a)).unwrap_or_default();
    let entries = levee_privacy::ledger::verify(&text)
        .map(|(e, _)| e)
        .map_err(|e| EraseError::Ledger(e.to_string()))?;
    if let Some((subject, until_ms, reason)) = active_holds(&entries, now_ms).into_iter().next() {
        return Err(EraseError::Held {
            subject,
            until_ms,
            reason,
        });
    }
    let tiers = tiers_of(a, r);
    let files: Vec<(super::LogFile, &'static str)> = tiers
        .iter()
        .flat_map(|t| log_files(&t.log).into_iter().map(move |f| (f, t.name)))
        .collect();
    if !writer {
        if let Some((f, _)) = files
            .iter()
            .find(|(f, _)| f.live && super::open_for_writing(&f.path))
        {
            return Err(EraseError::Busy(f.path.clone()));
        }
    }
    let keys = crate::keys::present(a);
    let raw: Vec<PathBuf> = files
        .iter()
        .filter(|(_, t)| *t == "raw")
        .map(|(f, _)| f.path.clone())
        .collect();
    let (needles, resolved) = needles(who, &keys, &raw);
    let kind = match who {
        Person::Address(_) => "address",
        Person::Pseudonym(_) => "pseudonym",
    };
    let ledger_dir = ledger.dir().to_path_buf();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |e: std::io::Error| EraseError::Io {
            path,
            why: e.to_string(),
        }
    };
    ledger
        .append(
            now_ms,
            "erasure_started",
            kind,
            serde_json::json!({"reason": reason, "files": files.len(), "keys_linkable": keys.len()}),
        )
        .map_err(io(&crate::ledger::path_of(a)))?;
    let mut out = Erased {
        files: Vec::new(),
        files_scanned: files.len(),
        lines_removed: 0,
        resolved,
    };
    for (f, tier) in &files {
        let (removed, kept, sha) = rewrite(&f.path, &needles).map_err(io(&f.path))?;
        if removed == 0 {
            continue;
        }
        ledger
            .append(
                now_ms,
                "erased",
                &subject(&ledger_dir, &f.path),
                serde_json::json!({"lines_removed": removed, "lines_kept": kept, "sha256_after": sha, "tier": tier}),
            )
            .map_err(io(&f.path))?;
        out.lines_removed += removed;
        out.files.push(FileErased {
            file: f.path.display().to_string(),
            lines_removed: removed,
            lines_kept: kept,
        });
    }
    ledger
        .append(
            now_ms,
            "erasure_done",
            kind,
            serde_json::json!({"reason": reason, "lines_removed": out.lines_removed, "files_changed": out.files.len()}),
        )
        .map_err(io(&crate::ledger::path_of(a)))?;
    Ok(out)
}

/// `levee retention erase` without a running edge: run it here.
pub fn erase_offline(
    cfg: &levee_config::Config,
    who: &Person,
    reason: &str,
    now_ms: u64,
) -> Result<Erased, EraseError> {
    let mut l = Ledger::open(crate::ledger::path_of(&cfg.access_log))
        .map_err(|e| EraseError::Ledger(e.to_string()))?;
    erase(
        &cfg.access_log,
        &cfg.retention,
        who,
        reason,
        &mut l,
        now_ms,
        false,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_field_is_read_exactly() {
        let l = br#"{"ts_ms":1,"client":"192.0.2.1","site":"s","path":"/\"client\":\"x\""}"#;
        assert_eq!(client_of(l), Some(&b"192.0.2.1"[..]));
        assert_eq!(client_of(b"garbage"), None);
        assert_eq!(client_of(br#"{"client":"unterminated"#), None);
    }

    #[test]
    fn erasure_removes_exactly_one_clients_lines_in_plain_and_gz_and_keeps_the_mtime() {
        let d = std::env::temp_dir().join(format!("levee-erase-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let log = d.join("access.log");
        let mut text = String::new();
        for i in 0..100 {
            let c = if i % 10 == 0 {
                "192.0.2.7"
            } else {
                "192.0.2.8"
            };
            text.push_str(&format!(
                "{{\"ts_ms\":{i},\"client\":\"{c}\",\"path\":\"/192.0.2.7\"}}\n"
            ));
        }
        std::fs::write(&log, &text).unwrap();
        let gz = d.join("access.log.1.gz");
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400 * 3);
        std::fs::File::options()
            .write(true)
            .open(&gz)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let text_cfg = format!(
            "[[listener]]\naddress = \"127.0.0.1:0\"\n[access_log]\npath = {:?}\n[[site]]\nname = \"a\"\nhosts = [\"a\"]\n[[site.origin]]\naddress = \"127.0.0.1:9\"\n",
            log.to_string_lossy()
        );
        let cfg = levee_config::parse("t.toml", &text_cfg).unwrap();
        let who = Person::Address("192.0.2.7".parse().unwrap());
        let done = erase_offline(&cfg, &who, "request SAR-1", 1000).unwrap();
        assert_eq!(done.lines_removed, 20);
        assert_eq!(done.files.len(), 2);
        let after = std::fs::read_to_string(&log).unwrap();
        assert_eq!(after.lines().count(), 90);
        assert!(!after.contains("\"client\":\"192.0.2.7\""));
        // A path that merely contains the address is not the client.
        assert!(after.contains("/192.0.2.7"));
        let mut unz = String::new();
        std::io::Read::read_to_string(
            &mut flate2::read::MultiGzDecoder::new(std::fs::File::open(&gz).unwrap()),
            &mut unz,
        )
        .unwrap();
        assert_eq!(unz, after);
        assert_eq!(std::fs::metadata(&gz).unwrap().modified().unwrap(), old);
        // The ledger: started, two files, done; no address in it.
        let ledger = std::fs::read_to_string(d.join("retention-ledger.jsonl")).unwrap();
        let (entries, _) = levee_privacy::ledger::verify(&ledger).unwrap();
        let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            ["erasure_started", "erased", "erased", "erasure_done"]
        );
        assert!(!ledger.contains("192.0.2.7"));
        // Under a hold: refused, naming it, and nothing changes.
        let mut l = Ledger::open(d.join("retention-ledger.jsonl")).unwrap();
        l.append(
            1000,
            "hold",
            "incident-9",
            serde_json::json!({"until_ms": 5000, "reason": "NCSC report"}),
        )
        .unwrap();
        let who = Person::Address("192.0.2.8".parse().unwrap());
        let err = erase_offline(&cfg, &who, "r", 2000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("incident-9") && err.contains("NCSC report"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&log).unwrap(), after);
        // A live log another process holds locked: busy.
        let held = std::fs::File::open(&log).unwrap();
        held.lock().unwrap();
        let err = erase_offline(&cfg, &who, "r", 6000).unwrap_err();
        assert!(matches!(err, EraseError::Busy(_)), "{err}");
    }
}
