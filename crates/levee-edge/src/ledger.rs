//! The retention ledger's file (`[access_log] ledger`, by default
//! `retention-ledger.jsonl` beside the access log): one writer, the access
//! log's thread, appends hash-chained entries (`levee_privacy::ledger`) for
//! every key created and destroyed, every file deleted, and each sweep's
//! inventory, each synced before the act it records is relied on.

use levee_privacy::ledger::{self, Entry};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the ledger of `cfg`'s access log is.
pub(crate) fn path_of(cfg: &levee_config::AccessLog) -> PathBuf {
    match &cfg.ledger {
        Some(p) => PathBuf::from(p),
        None => Path::new(&cfg.path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("retention-ledger.jsonl"),
    }
}

/// Why the ledger cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("retention ledger {path:?}: {why}")]
pub(crate) struct LedgerError {
    pub path: PathBuf,
    pub why: String,
}

/// The hash of the last entry of the ledger at `path`, read from its tail.
fn last_hash(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    let from = len.saturating_sub(64 * 1024);
    f.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = String::new();
    f.take(64 * 1024).read_to_string(&mut tail).ok()?;
    tail.lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Entry>(l).ok())
        .map(|e| e.hash)
}

/// The legal holds recorded in the ledger at `path`: when each ends (ms).
pub(crate) fn holds(path: &Path) -> Vec<u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Entry>(l).ok())
        .filter(|e| e.action == "hold")
        .filter_map(|e| e.detail["until_ms"].as_u64())
        .collect()
}

/// The append-only ledger file.
#[derive(Debug)]
pub(crate) struct Ledger {
    path: PathBuf,
    last: String,
}

impl Ledger {
    /// The directory the ledger is in (file names in its entries are
    /// relative to it).
    pub(crate) fn dir(&self) -> &Path {
        self.path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
    }

    /// The legal holds recorded in this ledger (re-read: another process may add one).
    pub(crate) fn holds(&self) -> Vec<u64> {
        holds(&self.path)
    }

    /// Open (or start) the ledger; a broken chain is reported, and new
    /// entries follow its last line, so the break stays visible to `verify`.
    pub(crate) fn open(path: PathBuf) -> Result<Ledger, LedgerError> {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(LedgerError {
                    path,
                    why: e.to_string(),
                })
            }
        };
        let last = match ledger::verify(&text) {
            Ok((_, last)) => last,
            Err(e) => {
                eprintln!(
                    "levee: retention ledger {}: {e}; appending after its last line",
                    path.display()
                );
                text.lines()
                    .rev()
                    .find_map(|l| serde_json::from_str::<Entry>(l).ok())
                    .map_or_else(|| ledger::GENESIS.to_string(), |e| e.hash)
            }
        };
        Ok(Ledger { path, last })
    }

    /// Append an entry and sync it.
    pub(crate) fn append(
        &mut self,
        ts_ms: u64,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // Another process (`levee retention hold`, `erase`) may append too:
        // one at a time (an exclusive lock on the file), each chained after
        // the file's last entry, not the one remembered.
        f.lock()?;
        if let Some(h) = last_hash(&self.path) {
            self.last = h;
        }
        let e = Entry::chained(&self.last, ts_ms, action, subject, detail);
        f.write_all(format!("{}\n", e.line()).as_bytes())?;
        f.sync_all()?;
        self.last = e.hash;
        Ok(())
    }
}
