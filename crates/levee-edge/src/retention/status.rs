//! `levee retention status`: per tier, the files held with their oldest
//! and newest records and when each is due for deletion; the legal holds in
//! force; the pseudonym keys present and when each is destroyed; and
//! whether the ledger's chain is intact. Read-only.

use super::{active_holds, log_files, tiers};
use std::path::Path;

/// The status of `cfg`'s retention at `now_ms`, as JSON (times in ms since
/// the epoch; the binary renders them).
pub fn status(cfg: &levee_config::Config, now_ms: u64) -> serde_json::Value {
    let ledger = crate::ledger::path_of(&cfg.access_log);
    let text = std::fs::read_to_string(&ledger).unwrap_or_default();
    let (entries, chain) = match levee_privacy::ledger::verify(&text) {
        Ok((e, _)) => (e, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let holds = active_holds(&entries, now_ms);
    let held = !holds.is_empty();
    let mut next = Vec::new();
    let tiers: Vec<serde_json::Value> = tiers(cfg)
        .iter()
        .map(|t| {
            let files = log_files(&t.log);
            let keep_ms = u64::from(t.days) * 86_400_000;
            let oldest = files.iter().map(|f| f.first_ms.unwrap_or(f.mtime_ms)).min();
            let listed: Vec<serde_json::Value> = files
                .iter()
                .map(|f| {
                    let due = (!f.live && cfg.retention.enabled)
                        .then(|| f.newest_ms().saturating_add(keep_ms));
                    if let Some(d) = due {
                        next.push((d, f.path.display().to_string(), t.name));
                    }
                    serde_json::json!({
                        "file": f.name,
                        "bytes": f.bytes,
                        "live": f.live,
                        "first_record_ms": f.first_ms,
                        "last_record_ms": f.last_ms,
                        "mtime_ms": f.mtime_ms,
                        "due_ms": due,
                    })
                })
                .collect();
            serde_json::json!({
                "tier": t.name,
                "log": t.log.display().to_string(),
                "days": t.days,
                "bytes": files.iter().map(|f| f.bytes).sum::<u64>(),
                "oldest_record_ms": oldest,
                "files": listed,
            })
        })
        .collect();
    next.sort();
    let next: Vec<serde_json::Value> = next
        .iter()
        .take(20)
        .map(|(due, file, tier)| {
            serde_json::json!({"file": file, "tier": tier, "due_ms": due, "overdue": *due <= now_ms, "held": held})
        })
        .collect();
    let a = &cfg.access_log;
    let keys = a.key_dir.as_deref().filter(|_| a.pseudonymize).map(|dir| {
        let rotation = a.key_rotation.as_duration().as_millis() as u64;
        let linkable = a.key_linkable.as_duration().as_millis() as u64;
        let mut present: Vec<serde_json::Value> = std::fs::read_dir(Path::new(dir))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let start_s = crate::keys::key_start(&name)?;
                Some(serde_json::json!({
                    "key": name,
                    "period_start_ms": start_s * 1000,
                    "destroyed_at_ms": start_s * 1000 + rotation + linkable,
                }))
            })
            .collect();
        present.sort_by_key(|k| k["period_start_ms"].as_u64());
        serde_json::json!({"dir": dir, "present": present})
    });
    serde_json::json!({
        "now_ms": now_ms,
        "enabled": cfg.retention.enabled,
        "ledger": ledger.display().to_string(),
        "ledger_entries": entries.len(),
        "ledger_broken": chain,
        "tiers": tiers,
        "holds": holds.iter().map(|(s, u, r)| serde_json::json!({"subject": s, "until_ms": u, "reason": r})).collect::<Vec<_>>(),
        "next_deletions": next,
        "erasures_unfinished": super::unfinished_erasures(&entries).iter().map(|(ts, r)| serde_json::json!({"started_ms": ts, "reason": r})).collect::<Vec<_>>(),
        "keys": keys,
    })
}
