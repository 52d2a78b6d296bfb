//! The retention ledger, cited: whether its chain holds and the entries
//! about an incident's records.

use crate::{Ledger, LedgerCite};

/// What the retention ledger at `path` (its `text`) says about incident
/// `id` open from `opened_ms` to `closed_ms`: whether its chain holds, and
/// the entries that concern the incident's records: the record itself,
/// holds in force after it opened, access-log files whose records overlap
/// its period, and keys destroyed since (after which pseudonyms of the
/// period can no longer be linked to addresses).
pub fn cite_ledger(
    path: &str,
    text: &str,
    id: &str,
    opened_ms: u64,
    closed_ms: Option<u64>,
) -> Ledger {
    let end = closed_ms.unwrap_or(u64::MAX);
    let (entries, verified) = match levee_privacy::ledger::verify(text) {
        Ok((e, head)) => (e, Ok(head)),
        Err(err) => {
            // Cite what can be read, and say the chain does not hold.
            let e = text
                .lines()
                .filter_map(|l| serde_json::from_str::<levee_privacy::ledger::Entry>(l).ok())
                .collect();
            (e, Err(err.to_string()))
        }
    };
    let mut cited = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let d = &e.detail;
        let u = |k: &str| d[k].as_u64();
        let about_it = e.subject.contains(id) || d.to_string().contains(id);
        let overlaps = match (u("first_record_ms"), u("last_record_ms")) {
            (Some(a), Some(b)) => a <= end && b >= opened_ms,
            _ => false,
        };
        let hold = e.action == "hold" && u("until_ms").is_some_and(|t| t >= opened_ms);
        let key = e.action == "key_destroyed" && e.ts_ms >= opened_ms;
        if about_it || overlaps || hold || key {
            cited.push(LedgerCite {
                line: i + 1,
                ts_ms: e.ts_ms,
                action: e.action.clone(),
                subject: e.subject.clone(),
                hash: e.hash.clone(),
            });
        }
    }
    Ledger {
        path: path.to_string(),
        verified,
        entries: entries.len(),
        cited,
    }
}
