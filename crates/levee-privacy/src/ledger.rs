//! The retention ledger: one JSON line per destruction, deletion or hold,
//! each carrying the SHA-256 of the previous line's hash and its own
//! content, so that a missing, reordered or altered entry breaks the chain.
//!
//! `Entry::chained` makes the next line from the previous hash; `verify`
//! checks a whole ledger's text and names the first line that does not
//! hold. Appending, fsync and reading are the caller's.

use serde::{Deserialize, Serialize};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Unix time in milliseconds.
    pub ts_ms: u64,
    /// `key_created`, `key_destroyed`, `file_deleted`, `hold`, `erased`…
    pub action: String,
    /// What it concerns (a file name, a key's id).
    pub subject: String,
    /// Details (sizes, time ranges, hashes, reasons), as the action needs.
    #[serde(default)]
    pub detail: serde_json::Value,
    /// The previous entry's `hash` (or `GENESIS`).
    pub prev: String,
    /// SHA-256 of `prev` and this entry's other fields.
    pub hash: String,
}

/// Lower-case hex of bytes (hashes in the ledger and its records).
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn digest(
    ts_ms: u64,
    action: &str,
    subject: &str,
    detail: &serde_json::Value,
    prev: &str,
) -> String {
    let body = serde_json::json!([ts_ms, action, subject, detail, prev]).to_string();
    hex(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref())
}

impl Entry {
    /// The entry that follows `prev` (a hash, or `GENESIS`).
    pub fn chained(
        prev: &str,
        ts_ms: u64,
        action: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Entry {
        Entry {
            hash: digest(ts_ms, action, subject, &detail, prev),
            ts_ms,
            action: action.to_string(),
            subject: subject.to_string(),
            detail,
            prev: prev.to_string(),
        }
    }

    /// As one JSON line (no newline).
    pub fn line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Why a ledger does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("line {line}: not a ledger entry ({why})")]
    Unreadable { line: usize, why: String },
    #[error(
        "line {line}: does not follow the previous entry (an entry is missing or out of order)"
    )]
    Broken { line: usize },
    #[error("line {line}: altered (its hash does not match its content)")]
    Altered { line: usize },
}

/// Check a ledger's text; the entries and the last hash if it holds.
pub fn verify(text: &str) -> Result<(Vec<Entry>, String), LedgerError> {
    let mut prev = GENESIS.to_string();
    let mut out = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let line = i + 1;
        if l.trim().is_empty() {
            continue;
        }
        let e: Entry = serde_json::from_str(l).map_err(|e| LedgerError::Unreadable {
            line,
            why: e.to_string(),
        })?;
        if e.prev != prev {
            return Err(LedgerError::Broken { line });
        }
        if digest(e.ts_ms, &e.action, &e.subject, &e.detail, &e.prev) != e.hash {
            return Err(LedgerError::Altered { line });
        }
        prev = e.hash.clone();
        out.push(e);
    }
    Ok((out, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger() -> String {
        let a = Entry::chained(GENESIS, 1, "key_created", "k1", serde_json::json!({}));
        let b = Entry::chained(
            &a.hash,
            2,
            "key_destroyed",
            "k1",
            serde_json::json!({"period": [0, 1]}),
        );
        let c = Entry::chained(
            &b.hash,
            3,
            "file_deleted",
            "access.log.1",
            serde_json::json!({"bytes": 10}),
        );
        format!("{}\n{}\n{}\n", a.line(), b.line(), c.line())
    }

    #[test]
    fn a_chain_verifies_and_any_change_names_its_line() {
        let t = ledger();
        let (entries, last) = verify(&t).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(last, entries[2].hash);
        // Altered content.
        let altered = t.replace("\"bytes\":10", "\"bytes\":11");
        assert_eq!(
            verify(&altered).unwrap_err(),
            LedgerError::Altered { line: 3 }
        );
        // A missing entry.
        let lines: Vec<&str> = t.lines().collect();
        let missing = format!("{}\n{}\n", lines[0], lines[2]);
        assert_eq!(
            verify(&missing).unwrap_err(),
            LedgerError::Broken { line: 2 }
        );
        // Junk.
        assert!(matches!(
            verify("{not json\n"),
            Err(LedgerError::Unreadable { line: 1, .. })
        ));
        assert_eq!(verify("").unwrap().1, GENESIS);
    }
}
